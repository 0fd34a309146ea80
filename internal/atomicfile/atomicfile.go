// Package atomicfile writes small files durably and atomically: a reader
// sees the old content or the new, never a mix, and the new content survives
// a crash once Write returns.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// Write durably writes data to dir/name with mode 0600: it writes and
// syncs a temporary file in dir, moves it into place and syncs dir. If
// exclusive, an existing file is left alone and the error wraps
// [fs.ErrExist].
func Write(dir, name string, data []byte, exclusive bool) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a link, or on failure
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	path := filepath.Join(dir, name)
	if exclusive {
		err = os.Link(tmpName, path)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// No hard links on this file system: check, then rename.
			if _, serr := os.Lstat(path); serr == nil {
				return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
			}
			err = os.Rename(tmpName, path)
		}
	} else {
		err = os.Rename(tmpName, path)
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !ignoreDirSyncError(err) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ignoreDirSyncError reports whether err only means that directories
// cannot be synced here (Windows, some file systems).
func ignoreDirSyncError(err error) bool {
	return runtime.GOOS == "windows" || errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported)
}
