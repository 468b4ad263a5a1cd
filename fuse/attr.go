package fuse

import (
	"io/fs"
	"syscall"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660"
)

// fatReadOnly is the FAT read-only attribute bit.
const fatReadOnly = 0x01

// blksize is st_blksize: the I/O size we like (one FUSE request).
const blksize = 128 << 10

// typeBits returns the S_IFMT bits of an io/fs mode.
func typeBits(m fs.FileMode) uint32 {
	switch {
	case m.IsDir():
		return syscall.S_IFDIR
	case m&fs.ModeSymlink != 0:
		return syscall.S_IFLNK
	case m&fs.ModeNamedPipe != 0:
		return syscall.S_IFIFO
	case m&fs.ModeSocket != 0:
		return syscall.S_IFSOCK
	case m&fs.ModeCharDevice != 0:
		return syscall.S_IFCHR
	case m&fs.ModeDevice != 0:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

// keyOf is the identity of the file fi describes (see idKey); target is a
// symbolic link's target, p its path (for file systems that suggest no
// inode numbers).
func keyOf(fi fs.FileInfo, target, p string) idKey {
	k := idKey{typ: typeBits(fi.Mode()), extent: -1}
	switch s := fi.Sys().(type) {
	case *fat.Sys:
		k.natural = s.Ino
	case *iso9660.Sys:
		k.natural = s.Ino
		if len(s.Extents) > 0 {
			k.extent = s.Extents[0].Block
		}
		k.size = fi.Size()
		if fi.Mode()&fs.ModeDevice != 0 {
			k.size = int64(s.Rdev)
		}
		k.link = target
	default:
		k.path = p
	}
	return k
}

// permBits returns the permission bits shown for fi (see the package
// documentation).
func (m *mount) permBits(fi fs.FileInfo) uint32 {
	mode := fi.Mode()
	dir := mode.IsDir()
	switch s := fi.Sys().(type) {
	case *iso9660.Sys:
		if s.HasOwner { // Rock Ridge PX
			p := uint32(mode.Perm())
			if mode&fs.ModeSetuid != 0 {
				p |= syscall.S_ISUID
			}
			if mode&fs.ModeSetgid != 0 {
				p |= syscall.S_ISGID
			}
			if mode&fs.ModeSticky != 0 {
				p |= syscall.S_ISVTX
			}
			return p
		}
	case *fat.Sys:
		if m.writable && !dir && s.Attrs&fatReadOnly != 0 {
			return 0o444
		}
	}
	switch {
	case mode&fs.ModeSymlink != 0:
		return 0o777
	case dir && m.writable:
		return 0o755
	case dir:
		return 0o555
	case m.writable:
		return 0o644
	}
	return 0o444
}

// fillAttr describes fi in a; target is a symbolic link's target, and
// subdirs the directory's count of subdirectories (-1: unknown).
func (m *mount) fillAttr(a *gofuse.Attr, fi fs.FileInfo, id *ident, target string, subdirs int) {
	*a = gofuse.Attr{}
	typ := typeBits(fi.Mode())
	a.Ino = id.ino
	a.Mode = typ | m.permBits(fi)
	a.Uid, a.Gid = m.uid, m.gid
	a.Blksize = blksize
	a.Nlink = 1
	a.Size = uint64(max(fi.Size(), 0))
	mtime := fi.ModTime()
	atime, ctime := mtime, mtime
	var alloc int64
	switch s := fi.Sys().(type) {
	case *fat.Sys:
		alloc = s.Alloc
		if typ == syscall.S_IFDIR {
			a.Size = uint64(s.Alloc) // as vfat: a directory's size is its chain's
		}
		if !s.Accessed.IsZero() {
			atime = s.Accessed
		}
	case *iso9660.Sys:
		alloc = s.Alloc
		if !s.Atime.IsZero() {
			atime = s.Atime
		}
		if !s.Ctime.IsZero() {
			ctime = s.Ctime
		}
		if s.HasOwner && s.Nlink > 0 {
			a.Nlink = s.Nlink
		}
		if typ == syscall.S_IFCHR || typ == syscall.S_IFBLK {
			a.Rdev = uint32(unix.Mkdev(s.DevMajor, s.DevMinor))
		}
	}
	if typ == syscall.S_IFDIR && a.Nlink == 1 && subdirs >= 0 {
		a.Nlink = uint32(2 + subdirs)
	}
	if typ == syscall.S_IFLNK {
		a.Size = uint64(len(target))
		alloc = 0
	}
	a.Blocks = uint64((alloc + 511) / 512)
	a.Mtime, a.Mtimensec = unixTime(mtime)
	a.Atime, a.Atimensec = unixTime(atime)
	a.Ctime, a.Ctimensec = unixTime(ctime)
	if id.removed.Load() {
		a.Nlink = 0
	}
}

// unixTime splits t for the FUSE attribute (the kernel reads the seconds as
// signed); an unset time is the epoch.
func unixTime(t time.Time) (uint64, uint32) {
	if t.IsZero() {
		return 0, 0
	}
	return uint64(t.Unix()), uint32(t.Nanosecond())
}
