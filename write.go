package mediafs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/partition"
)

// File is an open file of a writable file system.
type File interface {
	fs.File
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Seeker
	Truncate(size int64) error
	Sync() error
}

// WritableFS is a file system opened for writing (FAT). Changes reach the
// medium in an order that leaves it consistent after a crash at any point
// (at worst lost clusters, or the one file being written short); the volume
// is marked dirty from the first change until Sync or Close.
type WritableFS interface {
	FS
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Mkdir(name string, perm fs.FileMode) error
	Remove(name string) error
	RemoveAll(name string) error
	Rename(oldname, newname string) error
	Chtimes(name string, atime, mtime time.Time) error
	SetLabel(label string) error
	Sync() error
}

// ErrReadOnlyFS is returned by OpenWritable for file systems mediafs does
// not write (ISO 9660).
var ErrReadOnlyFS = errors.New("read-only file system")

// OpenWritable opens an image file or block device for writing. ISO 9660
// media are refused with ErrReadOnlyFS.
func OpenWritable(path string, opts ...Option) (WritableFS, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.readOnly {
		return nil, fmt.Errorf("OpenWritable with the ReadOnly option: %w", ErrReadOnlyFS)
	}
	o.writable = true
	f, err := openPath(path, &o)
	if err != nil {
		return nil, err
	}
	w, ok := f.(WritableFS)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("%s is %s: %w", path, f.Info().FS, ErrReadOnlyFS)
	}
	return w, nil
}

// OpenWritableDevice opens the file system on a device for writing. The
// FS owns the device and closes it on Close.
func OpenWritableDevice(d device.Device, opts ...Option) (WritableFS, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.writable = true
	f, err := openDevice(wrapMedium(d, &o), &o)
	if err != nil {
		return nil, err
	}
	w, ok := f.(WritableFS)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("%s: %w", f.Info().FS, ErrReadOnlyFS)
	}
	return w, nil
}

// OpenFile opens a file as os.OpenFile does (O_CREATE, O_EXCL, O_TRUNC,
// O_APPEND, O_RDWR, ...).
func (f *fatFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return file, nil
}

var _ WritableFS = (*fatFS)(nil)

// MkfsOptions describe a new FAT image (DESIGN.md, "mkfs").
type MkfsOptions struct {
	Type           string // "fat12", "fat16", "fat32", or "" to choose by size as mkfs.fat does
	Size           int64  // bytes of the whole image
	SectorSize     int    // 512 (default), 1024, 2048 or 4096
	ClusterSize    int    // bytes; 0 = the default for the size
	Label          string
	Serial         uint32
	SerialSet      bool   // false: a random serial
	PartitionTable string // "", "none", "mbr" or "gpt": a disk with one FAT partition
	ESP            bool   // the partition is an EFI system partition (GPT type C12A7328-..., MBR 0xEF)
}

// Mkfs creates the image file path (which must not exist yet) and lays a
// FAT file system on it, inside a one-partition MBR or GPT disk if asked.
// The image is sparse: only the boot sectors, FATs and root directory are
// written.
func Mkfs(path string, o MkfsOptions) error {
	ss := o.SectorSize
	if ss == 0 {
		ss = 512
	}
	if !device.ValidSectorSize(ss) {
		return fmt.Errorf("sector size %d: want 512, 1024, 2048 or 4096", ss)
	}
	if o.Size <= 0 {
		return errors.New("the image size must be positive")
	}
	size := o.Size / int64(ss) * int64(ss)
	if size != o.Size {
		return fmt.Errorf("size %d is not a whole number of %d-byte sectors", o.Size, ss)
	}
	out, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; mkfs makes new images only (remove it first)", path)
		}
		return err
	}
	ok := false
	defer func() {
		out.Close()
		if !ok {
			os.Remove(path)
		}
	}()
	if err := out.Truncate(size); err != nil {
		return err
	}
	out.Close()
	d, err := device.Open(path, device.Options{SectorSize: ss})
	if err != nil {
		return err
	}
	defer d.Close()
	var vol device.Device = d
	var hidden uint32
	switch o.PartitionTable {
	case "", "none":
	case "mbr", "gpt":
		parts, err := partition.Write(d, partition.Layout{Kind: o.PartitionTable, SectorSize: ss, DiskSize: size,
			Partitions: []partition.NewPartition{{FAT: fatUnlessESP(o), ESP: o.ESP}}})
		if err != nil {
			return err
		}
		if len(parts) != 1 {
			return fmt.Errorf("partition table: %d partitions written, want 1", len(parts))
		}
		w, err := device.NewWindow(d, parts[0].Start, parts[0].Size)
		if err != nil {
			return err
		}
		vol = w
		hidden = uint32(parts[0].Start / int64(ss))
	default:
		return fmt.Errorf("partition table %q: want none, mbr or gpt", o.PartitionTable)
	}
	if o.ESP && hidden == 0 {
		return errors.New("an EFI system partition needs a partition table (mbr or gpt)")
	}
	if err := fat.Format(vol, fat.FormatOptions{Type: o.Type, ClusterSize: o.ClusterSize, Label: o.Label,
		Serial: o.Serial, SerialSet: o.SerialSet, HiddenSectors: hidden}); err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		return err
	}
	ok = true
	return nil
}

// fatUnlessESP is the FAT type that chooses the partition's type byte; an
// EFI system partition has its own type instead.
func fatUnlessESP(o MkfsOptions) string {
	if o.ESP {
		return ""
	}
	return o.Type
}
