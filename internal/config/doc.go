// Package config holds gokdump's configuration: the TOML file
// /etc/gokdump.toml that the host's CLI reads and the capture initramfs
// carries, and its overrides from the capture kernel's command line
// (gokdump.KEY=VALUE).
//
// Every key is optional. A key's value remembers where it came from (the
// default, a file and line, or the command line) so that "gokdump show" can
// say why the effective configuration is what it is. Mistakes are errors
// that name the key and the line: an unknown key, a value of the wrong type,
// a value out of range.
//
// Parse and ApplyCmdline check each value on its own; Validate checks how
// values fit together and should be called once every source is applied.
//
// The keys, with their defaults (configs/gokdump.toml documents each):
//
//	target          = ""            # UUID=, LABEL=, PARTUUID=, PARTLABEL=, /dev/…, raw:…, ssh://…, nfs://… or host:/export
//	fstype          = ""            # ext4, ext3, ext2, xfs, vfat, btrfs; "" detects
//	mount_options   = ""
//	path            = "/var/crash"  # dumps go to <path>/<YYYY-MM-DD-HH:MM:SS>/vmcore
//	dump_level      = [31]          # 0..31, or a list tried in order
//	compress        = "zstd"        # zstd, lzo, zlib, snappy, none
//	format          = "kdump"       # kdump, elf
//	failure_action  = "reboot"      # reboot, poweroff, halt, fallback, shell
//	fallback_target = ""
//	final_action    = "reboot"      # reboot, poweroff, halt
//	shell           = false         # the operator's console before saving
//	shell_timeout   = "5m"          # no keystroke this long: final_action
//	keep            = 0             # dumps kept on the target; 0 keeps all
//	max_size        = ""            # "10G": the dump is cut there (makedumpfile -L)
//	modules         = []
//	time_budget     = "10m"
//	device_timeout  = "30s"
//	pre_hooks       = []            # static executables packed by gokdump build
//	post_hooks      = []
//	failure_hook    = ""
//	hook_timeout    = "1m"
//	hook_failure    = "continue"    # continue, fail (a failing pre hook stops the capture)
//	kernel_args     = ""
//	capture_cpus    = "auto"        # nr_cpus= of the capture kernel: "auto" (one per 32 GiB of RAM, 1..8) or 1..64
//	dmesg           = true
//	progress        = true
//	ssh_key         = "/etc/gokdump/id_ed25519"
//	known_hosts     = "/etc/gokdump/known_hosts"
//	ip              = "dhcp"        # dhcp, dhcp6, or "192.0.2.5/24[,2001:db8::5/64]"
//	gateway         = ""
//	dns             = []
//	test_panic      = ""            # tests only
package config
