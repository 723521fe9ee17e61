// Package size reads and writes byte sizes as people and the kernel write
// them: every flag and configuration key that takes a size parses it with
// Parse, and output shows sizes with Format.
//
// A unit is required: K, M, G, T, P and E (also KiB … EiB) are powers of
// 1024, as in crashkernel=64G and in free -h; KB, MB, GB, TB, PB and EB
// are powers of 1000, as disk vendors write them, and Parse says so, since
// "64GB" of RAM usually means 64 GiB; B is bytes. Fractions (1.5T) are
// allowed and rounded to a whole byte. A size of 0 and a number without a
// unit are refused with a hint: a bare 100 would be 100 bytes.
package size
