package fuse

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"syscall"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660"
)

// Errno maps an error of the mediafs packages to the errno a FUSE reply
// carries. It is the one place where that mapping is made; the order of
// the cases matters where one error wraps another (fat.ErrReadOnlyFS wraps
// fs.ErrPermission, and a media error inside a *fs.PathError that also
// says fs.ErrNotExist is still EIO).
//
//	nil                                          0
//	syscall.Errno                                itself
//	device.ErrBadSector, ErrTimeout, ErrShortIO  EIO  (device.IsMediaError: never a hang, never a short read)
//	device.ErrOutOfRange, ErrUnaligned, ErrClosed EIO
//	fat.ErrCorrupt, iso9660.ErrCorrupt           EIO  (as Linux's vfat and isofs)
//	io.ErrUnexpectedEOF                          EIO
//	read-only (fat, mediafs, device)             EROFS
//	fat.ErrNoSpace                               ENOSPC
//	fat.ErrFileTooLarge                          EFBIG (past 4 GiB - 1 bytes, as vfat)
//	fat.ErrNameTooLong                           ENAMETOOLONG
//	fat.ErrInvalidName, fs.ErrInvalid            EINVAL
//	fat.ErrNotEmpty                              ENOTEMPTY
//	fat.ErrIsDir, iso9660.ErrIsDir               EISDIR
//	fat.ErrNotDir, iso9660.ErrNotDir             ENOTDIR
//	iso9660.ErrLinkLoop                          ELOOP
//	fs.ErrNotExist                               ENOENT
//	fs.ErrExist                                  EEXIST
//	fs.ErrPermission                             EACCES (the FAT read-only attribute)
//	fs.ErrClosed                                 EBADF
//	errors.ErrUnsupported                        EOPNOTSUPP
//	context.Canceled                             EINTR
//	context.DeadlineExceeded                     EIO
//	anything else                                EIO
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	switch {
	case device.IsMediaError(err),
		errors.Is(err, device.ErrOutOfRange),
		errors.Is(err, device.ErrUnaligned),
		errors.Is(err, device.ErrClosed),
		errors.Is(err, fat.ErrCorrupt),
		errors.Is(err, iso9660.ErrCorrupt),
		errors.Is(err, io.ErrUnexpectedEOF):
		return syscall.EIO
	case errors.Is(err, fat.ErrReadOnlyFS),
		errors.Is(err, mediafs.ErrReadOnlyFS),
		errors.Is(err, device.ErrReadOnly):
		return syscall.EROFS
	case errors.Is(err, fat.ErrNoSpace):
		return syscall.ENOSPC
	case errors.Is(err, fat.ErrFileTooLarge):
		return syscall.EFBIG
	case errors.Is(err, fat.ErrNameTooLong):
		return syscall.ENAMETOOLONG
	case errors.Is(err, fat.ErrInvalidName):
		return syscall.EINVAL
	case errors.Is(err, fat.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, fat.ErrIsDir), errors.Is(err, iso9660.ErrIsDir):
		return syscall.EISDIR
	case errors.Is(err, fat.ErrNotDir), errors.Is(err, iso9660.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, iso9660.ErrLinkLoop):
		return syscall.ELOOP
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, fs.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, fs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, fs.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, fs.ErrClosed):
		return syscall.EBADF
	case errors.Is(err, errors.ErrUnsupported):
		return syscall.EOPNOTSUPP
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	return syscall.EIO
}
