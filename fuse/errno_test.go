package fuse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660"
)

func TestErrno(t *testing.T) {
	pe := func(err error) error { return &fs.PathError{Op: "read", Path: "/PHOTOS/IMG_0042.JPG", Err: err} }
	sector := func(err error) error { return &device.SectorError{Op: "read", Sector: 183204, Err: err} }
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{syscall.ENOSPC, syscall.ENOSPC},
		{pe(syscall.EXDEV), syscall.EXDEV},
		{pe(sector(device.ErrBadSector)), syscall.EIO},
		{pe(sector(fmt.Errorf("%w after 30s", device.ErrTimeout))), syscall.EIO},
		{pe(sector(device.ErrShortIO)), syscall.EIO},
		{pe(sector(device.ErrOutOfRange)), syscall.EIO},
		{fmt.Errorf("%w: %w", fs.ErrNotExist, sector(device.ErrBadSector)), syscall.EIO}, // the medium's failure wins
		{pe(&fat.CorruptError{Cluster: 7, Msg: "chain loops"}), syscall.EIO},
		{pe(iso9660.ErrCorrupt), syscall.EIO},
		{io.ErrUnexpectedEOF, syscall.EIO},
		{pe(fat.ErrReadOnlyFS), syscall.EROFS}, // although it wraps fs.ErrPermission
		{fmt.Errorf("x.iso is iso9660: %w", mediafs.ErrReadOnlyFS), syscall.EROFS},
		{pe(sector(device.ErrReadOnly)), syscall.EROFS},
		{pe(fat.ErrNoSpace), syscall.ENOSPC},
		{pe(fmt.Errorf("write: %w", fat.ErrFileTooLarge)), syscall.EFBIG},
		{pe(fmt.Errorf("%w: %q", fat.ErrInvalidName, "a:b")), syscall.EINVAL},
		{pe(fs.ErrInvalid), syscall.EINVAL},
		{pe(fat.ErrNameTooLong), syscall.ENAMETOOLONG},
		{pe(fat.ErrNotEmpty), syscall.ENOTEMPTY},
		{pe(fs.ErrNotExist), syscall.ENOENT},
		{pe(fs.ErrExist), syscall.EEXIST},
		{pe(fmt.Errorf("%w: the file has the read-only attribute", fs.ErrPermission)), syscall.EACCES},
		{pe(fat.ErrIsDir), syscall.EISDIR},
		{pe(fat.ErrNotDir), syscall.ENOTDIR},
		{pe(iso9660.ErrNotDir), syscall.ENOTDIR},
		{pe(iso9660.ErrIsDir), syscall.EISDIR},
		{pe(iso9660.ErrLinkLoop), syscall.ELOOP},
		{pe(fs.ErrClosed), syscall.EBADF},
		{pe(errors.ErrUnsupported), syscall.EOPNOTSUPP},
		{context.Canceled, syscall.EINTR},
		{context.DeadlineExceeded, syscall.EIO},
		{errors.New("something else"), syscall.EIO},
	} {
		if got := Errno(tc.err); got != tc.want {
			t.Errorf("Errno(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestNoFUSE checks the errors for a machine without /dev/fuse and for one
// without fusermount3.
func TestNoFUSE(t *testing.T) {
	saved, savedPath := devFuse, fusermountPath
	defer func() { devFuse, fusermountPath = saved, savedPath }()
	dir := t.TempDir()

	devFuse = dir + "/no-such-device"
	_, err := Mount(dir, nil, Options{})
	if !errors.Is(err, ErrNoFUSE) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "modprobe fuse") {
		t.Errorf("without /dev/fuse: %v", err)
	}

	devFuse = saved
	fusermountPath = func() (string, error) { return "", errors.New("fusermount3 not found: install fuse3") }
	if err := checkFUSE(); err != nil && strings.Contains(err.Error(), "/dev/fuse") {
		t.Skipf("no usable /dev/fuse here: %v", err)
	}
	_, err = Mount(dir, nil, Options{})
	if !errors.Is(err, ErrNoFUSE) || !strings.Contains(err.Error(), "fusermount3") || !strings.Contains(err.Error(), "fuse3") {
		t.Errorf("without fusermount3: %v", err)
	}
}
