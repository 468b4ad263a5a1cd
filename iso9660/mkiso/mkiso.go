// Package mkiso writes ISO 9660 (ECMA-119) images, optionally with Joliet,
// Rock Ridge (SUSP 1.12 / RRIP 1.12) and El Torito, using a logical block
// size of 512, 1024 or 2048 bytes.
//
// Volume descriptors always sit in 2048-byte logical sectors from byte
// 32768; everything else (path tables, directories, continuation areas,
// file data) is addressed in logical blocks, and file data is packed block
// by block, so with a block size below 2048 files start and end in the
// middle of a sector. The image ends at the last used logical block, which
// may be in the middle of a sector.
//
// Output is deterministic: the same source tree and options give the same
// bytes.
package mkiso

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// Options controls the image layout.
type Options struct {
	// BlockSize is the logical block size: 512, 1024 or 2048 (0 means 2048).
	BlockSize int
	// VolumeID is the volume label (mapped to d-characters; default "CDROM").
	VolumeID string
	// Joliet adds a Joliet supplementary volume descriptor (UCS-2 level 3)
	// with its own directory tree and path tables.
	Joliet bool
	// RockRidge adds SUSP/RRIP entries (SP, ER, PX, TF, NM, SL, PN, RE, CL,
	// PL and CE) to the ISO 9660 tree.
	RockRidge bool
	// UnalignedDirs lets directory extents start mid-sector when BlockSize
	// is below 2048. By default every directory starts on a 2048 sector.
	UnalignedDirs bool
	// EmptyAtZero gives zero-length files extent 0 (as xorriso does).
	// Otherwise they point at the next free block without using it.
	EmptyAtZero bool
	// MultiExtent maps a file path (slash separated, relative to the source
	// root) to a section size in logical blocks: the file is written as
	// consecutive directory records with flag 0x80, each section but the
	// last that many blocks long, with a one-block hole between sections.
	// Files larger than 4 GiB are always split (without holes).
	MultiExtent map[string]int
	// Interleave maps a file path to {file unit size, interleave gap} in
	// logical blocks.
	Interleave map[string][2]int
	// Boot adds an El Torito boot record and catalog.
	Boot *Boot
	// ModTime is the volume creation/modification date. The zero value
	// means the newest modification time in the source tree (or the Unix
	// epoch when there is none), which keeps the output deterministic. It
	// is also used for entries without a usable modification time.
	ModTime time.Time
}

// Boot describes the El Torito default boot entry.
type Boot struct {
	// Path is the file in the source tree used as the boot image. It is
	// placed on a 2048-byte sector boundary.
	Path string
	// Platform is the platform id: 0 x86, 0xEF EFI.
	Platform uint8
	// Emulation is the boot media type: 0 no emulation.
	Emulation uint8
	// LoadSize is the number of 512-byte virtual sectors to load (0 = 4).
	LoadSize uint16
}

// Manifest describes where Write put things.
type Manifest struct {
	BlockSize    int
	VolumeBlocks int64 // volume space size, in logical blocks
	ImageSize    int64 // bytes: VolumeBlocks * BlockSize
	Files        []FileEntry
}

// FileEntry describes one regular file of the image.
type FileEntry struct {
	Path string // slash separated, relative to the source root
	Size int64
	// Alloc is the allocation: the sum of the sections' lengths with the
	// last rounded up to BlockSize, i.e. ceil(Size/BlockSize)*BlockSize.
	Alloc   int64
	Extents []Extent
	// Offset is the byte offset of the first data byte in the image.
	Offset          int64
	StartsMidSector bool
}

// Extent is one directory record's extent (a section of a file).
type Extent struct {
	Block  int64 // logical block number
	Length int64 // data length in bytes
	Unit   int   // file unit size (interleave), in logical blocks
	Gap    int   // interleave gap, in logical blocks
}

const (
	sectorSize = 2048
	chunkSize  = 1 << 20
)

// Write writes an image of src to w, every byte of it (gaps are written as
// zeros), and returns its manifest.
func Write(w io.WriterAt, src fs.FS, opts Options) (*Manifest, error) {
	return write(w, src, opts, false)
}

// WriteFile creates or truncates path and writes an image of src to it.
// All-zero chunks are skipped and the file is truncated to its final size,
// so sparse sources give sparse images.
func WriteFile(name string, src fs.FS, opts Options) (m *Manifest, err error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	m, err = write(f, src, opts, true)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(m.ImageSize); err != nil {
		return nil, err
	}
	return m, nil
}

func write(w io.WriterAt, src fs.FS, opts Options, sparse bool) (*Manifest, error) {
	if opts.BlockSize == 0 {
		opts.BlockSize = sectorSize
	}
	switch opts.BlockSize {
	case 512, 1024, 2048:
	default:
		return nil, fmt.Errorf("mkiso: block size %d: must be 512, 1024 or 2048", opts.BlockSize)
	}
	if opts.VolumeID == "" {
		opts.VolumeID = "CDROM"
	}
	wr := &writer{opts: opts, bs: int64(opts.BlockSize), src: src}
	if err := wr.scan(); err != nil {
		return nil, err
	}
	if err := wr.plan(); err != nil {
		return nil, err
	}
	wr.buildTrees()
	wr.layout()
	meta := wr.serialize()
	o := &output{w: w, sparse: sparse}
	if err := o.writeAt(meta, 0); err != nil {
		return nil, err
	}
	o.pos = int64(len(meta))
	if err := wr.writeData(o); err != nil {
		return nil, err
	}
	if err := o.zeroTo(wr.volBlocks * wr.bs); err != nil {
		return nil, err
	}
	return wr.manifest(), nil
}

// cleanPath turns a user-given path into the form used for nodes.
func cleanPath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

var errChanged = errors.New("mkiso: source file changed size while being written")
