//go:build !unix

package vault

import "os"

// lockFile opens (creating if missing) the file at path. There is no
// advisory lock on this system: two processes can open one vault, and the
// last writer wins.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// unlockFile closes a file opened by lockFile.
func unlockFile(f *os.File) error { return f.Close() }
