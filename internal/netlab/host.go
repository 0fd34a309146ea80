package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// Command returns a command that runs name with args inside the host's
// namespace ("ip netns exec <ns> name args..."; ip execs the program, so
// cmd.Process is the program itself). The lab remembers the command: Close
// kills it if it is still running and waits until it has exited. The
// command is also killed when ctx is done. The caller still calls Wait (or
// Run) as with any exec.Cmd to collect its status.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(h.lab.ctx, cancel)
	context.AfterFunc(cctx, func() { stop() })
	cmd := exec.CommandContext(cctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	h.lab.mu.Lock()
	h.lab.cmds = append(h.lab.cmds, cmd)
	h.lab.mu.Unlock()
	return cmd
}

// Run runs name with args inside the host's namespace to completion and
// returns its standard output. The error names the command and includes
// its standard error.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	return output(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
}

// Do runs fn on an OS thread switched into the host's network namespace
// and returns fn's error. It is meant for short synchronous work such as
// creating sockets or writing sysctls:
//
//   - Sockets created inside fn (net.ListenUDP, net.Listen, net.Dial, ...)
//     belong to the namespace for their whole life and may be used and
//     closed from any goroutine after Do returns.
//   - Goroutines started by fn, and anything fn hands to another goroutine
//     to create later, run in the test process's own namespace.
//   - fn runs on its own goroutine, so it must report failures through its
//     result rather than t.Fatal.
//   - Only the network namespace changes; the filesystem view stays the
//     test's (for example /sys still shows the root namespace).
//
// After fn the thread is switched back; if that fails the thread is
// discarded instead of being reused.
func (h *Host) Do(fn func() error) error {
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() { done <- res }()
		runtime.LockOSThread()
		// Without UnlockOSThread the thread exits with this goroutine, so a
		// thread left in the wrong namespace is never reused.
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			res.err = fmt.Errorf("netlab: opening the current network namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + h.ns)
		if err != nil {
			res.err = fmt.Errorf("netlab: opening namespace %s (deleted, or lab closed?): %w", h.ns, err)
			return
		}
		err = unix.Setns(int(target.Fd()), unix.CLONE_NEWNET)
		target.Close()
		if err != nil {
			res.err = fmt.Errorf("netlab: setns into %s: %w", h.ns, err)
			return
		}
		res.err = fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	return (<-done).err
}
