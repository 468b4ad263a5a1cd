// Package mediafs opens images and devices of removable media and presents
// their file systems as io/fs file systems: FAT12, FAT16 and FAT32 (floppies,
// magneto-optical disks, SD cards, USB sticks, EFI system partitions) and
// ISO 9660 with Joliet, Rock Ridge and El Torito (CD-ROM).
//
// Open looks at an image file or block device and decides what it holds, in
// this order (DESIGN.md, "Opening"):
//
//  1. an ISO 9660 volume descriptor at byte 32768 (of the chosen session),
//     which wins over a partition table, since isohybrid images carry both,
//     unless a partition is asked for;
//  2. a partition table (MBR or GPT), whose first FAT partition is used, or
//     the one asked for with WithPartition;
//  3. a FAT boot sector at sector 0 (a "superfloppy").
//
// Image files have no sector size of their own. It is taken from the file
// system (the BPB's bytes per sector; 2048 for ISO 9660) or, for a
// partitioned image, from the sector size at which the partition table
// points at a valid FAT boot sector. WithSectorSize overrides it. Recognised
// file systems that mediafs does not implement (exFAT, NTFS, UDF, ext2/3/4,
// HFS, HFS+) are named in the error.
//
// Every FS is safe for concurrent readers. Errors from the medium reach the
// caller as *fs.PathError values that name the file and wrap a
// *device.SectorError naming the sector, for example
// "read /PHOTOS/IMG_0042.JPG: sector 183204: bad sector".
package mediafs

import (
	"errors"
	"io/fs"
	"time"

	"github.com/mediafs/mediafs/device"
)

// FS is an opened file system, read side. Paths are io/fs paths:
// slash-separated, unrooted, "." for the root.
type FS interface {
	fs.FS
	fs.ReadDirFS
	fs.StatFS
	// Info describes the volume.
	Info() VolumeInfo
	// Close releases the file system and the medium under it.
	Close() error
}

// LinkFS is implemented by file systems with symbolic links (ISO 9660 with
// Rock Ridge). It matches io/fs.ReadLinkFS.
type LinkFS interface {
	ReadLink(name string) (string, error)
	Lstat(name string) (fs.FileInfo, error)
}

// ErrUnrecognized is returned by Open for media that hold no file system
// mediafs knows.
var ErrUnrecognized = errors.New("no FAT or ISO 9660 file system found")

// UnsupportedError names a file system that was recognised but that mediafs
// does not implement.
type UnsupportedError struct {
	FS    string // e.g. "exFAT", "NTFS", "UDF", "ext4", "HFS+"
	Where string // e.g. "partition 2", or "" for the whole medium
}

func (e *UnsupportedError) Error() string {
	if e.Where != "" {
		return e.Where + " holds " + e.FS + ", which mediafs does not support (it reads FAT12/16/32 and ISO 9660)"
	}
	return "the medium holds " + e.FS + ", which mediafs does not support (it reads FAT12/16/32 and ISO 9660)"
}

// options collects what Option values set.
type options struct {
	partition  int
	sectorSize int
	readOnly   bool
	namespace  string
	session    int64
	sessionSet bool
	codePage   int
	location   *time.Location
	mapfile    *device.Mapfile
	ioTimeout  time.Duration
	retries    int
	blockDev   bool // set while opening
	writable   bool // OpenWritable
}

// Option changes how Open and OpenDevice open a medium.
type Option func(*options)

// WithPartition opens partition n (from 1) of a partitioned medium.
func WithPartition(n int) Option { return func(o *options) { o.partition = n } }

// WithSectorSize overrides the sector size inferred for an image file.
func WithSectorSize(n int) Option { return func(o *options) { o.sectorSize = n } }

// ReadOnly opens the medium read-only; nothing is ever written to it.
func ReadOnly() Option { return func(o *options) { o.readOnly = true } }

// WithNamespace chooses the ISO 9660 name space: "rr" (Rock Ridge),
// "joliet" or "iso". The default takes Rock Ridge, else Joliet, else the
// plain ISO names.
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithSession reads the ISO 9660 session whose volume descriptors start at
// 2048-byte sector n+16 (Linux's sbsector=n). The default is sector 0 for an
// image file and the last session for a CD drive.
func WithSession(n int64) Option {
	return func(o *options) { o.session = n; o.sessionSet = true }
}

// WithCodePage sets the OEM code page of FAT short names (default 437).
func WithCodePage(cp int) Option { return func(o *options) { o.codePage = cp } }

// WithLocation sets the time zone FAT times are taken to be in (they carry
// none); the default is UTC.
func WithLocation(loc *time.Location) Option { return func(o *options) { o.location = loc } }

// WithMapfile makes every area that a GNU ddrescue mapfile does not mark as
// finished ("+") unreadable, so that the zeros a rescue left there are
// reported as bad sectors instead of being trusted. Positions in the map
// are bytes of the image (for a raw CD image, of its 2048-byte user data).
func WithMapfile(m *device.Mapfile) Option { return func(o *options) { o.mapfile = m } }

// WithIOTimeout fails a request that the medium does not answer within d,
// instead of waiting for ever (block devices; 0 turns it off).
func WithIOTimeout(d time.Duration) Option { return func(o *options) { o.ioTimeout = d } }

// WithRetries tries a read or write that failed with a media error up to n
// more times.
func WithRetries(n int) Option { return func(o *options) { o.retries = n } }
