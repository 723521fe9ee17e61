// Package supervise runs the capture as a child process of PID 1 and
// waits for its result, never past a deadline. A panic in any goroutine
// of the capture, the kernel killing it for want of memory, a capture
// stuck in a system call, or one that leaves descendants holding its
// result pipe open ends the child, never PID 1 (whose death would panic
// the kernel): Run then returns a failed Result in time for the failure
// action.
//
// The child is the same binary, told its role by the environment. Its
// result goes back as one JSON object through a pipe on its fd 3, which
// it makes close-on-exec first thing (ResultPipe), so that nothing it
// executes inherits it.
package supervise
