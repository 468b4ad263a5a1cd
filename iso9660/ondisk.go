package iso9660

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// ECMA-119 7.2.1 / 7.3.1: 721 and 731 are little-endian, 722 and 732 big-
// endian; 723 and 733 hold both (7.2.3, 7.3.3). Readers use the
// little-endian half, as Windows CDFS does; where the two halves must agree
// (the logical block size) the caller compares them.

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// both733 decodes an ECMA-119 7.3.3 number and reports whether its halves agree.
func both733(b []byte) (uint32, bool) { return le32(b), le32(b) == be32(b[4:]) }

// ECMA-119 9.1.5 Recording Date and Time (7 bytes): years since 1900, month,
// day, hour, minute, second, offset from GMT in 15-minute units. All zeros
// or any field out of range means "unset" (corpus-notes 1, 2).
func decodeRecordDate(b []byte) time.Time {
	if len(b) < 7 || allZero(b[:7]) {
		return time.Time{}
	}
	year, mon, day, h, m, s := 1900+int(b[0]), int(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5])
	if mon < 1 || mon > 12 || day < 1 || day > 31 || h > 23 || m > 59 || s > 59 {
		return time.Time{}
	}
	return makeTime(year, mon, day, h, m, s, 0, int8(b[6]))
}

// ECMA-119 8.4.26.1 Date and Time Format (17 bytes): "YYYYMMDDHHMMSScc" in
// ASCII digits and an offset from GMT in 15-minute units. All digits zero,
// non-digits or out-of-range fields mean "unset".
func decodeLongDate(b []byte) time.Time {
	if len(b) < 17 {
		return time.Time{}
	}
	var v [7]int
	widths := [7]int{4, 2, 2, 2, 2, 2, 2}
	p := 0
	for i, w := range widths {
		for _, c := range b[p : p+w] {
			if c < '0' || c > '9' {
				return time.Time{}
			}
			v[i] = v[i]*10 + int(c-'0')
		}
		p += w
	}
	if v[0] == 0 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59 {
		return time.Time{}
	}
	return makeTime(v[0], v[1], v[2], v[3], v[4], v[5], v[6]*10_000_000, int8(b[16]))
}

// makeTime builds a UTC time from local fields and a GMT offset in 15-minute
// units (corpus-notes 3: the offset is applied). An offset outside the
// range ECMA-119 allows (-48..52) is ignored.
func makeTime(year, mon, day, h, m, s, nsec int, off int8) time.Time {
	o := int(off)
	if o < -48 || o > 52 {
		o = 0
	}
	return time.Date(year, time.Month(mon), day, h, m, s, nsec, time.FixedZone("", o*15*60)).UTC()
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Volume descriptor types (ECMA-119 8.1.1).
const (
	vdBootRecord    = 0
	vdPrimary       = 1
	vdSupplementary = 2
	vdPartition     = 3
	vdTerminator    = 255
)

// maxVolumeDescriptors bounds the descriptor scan (Linux scans 100 sectors).
const maxVolumeDescriptors = 100

// ECMA-119 8.1 Volume Descriptor, with the fields of 8.4 Primary and 8.5
// Supplementary (and ISO 9660:1999 Enhanced) Volume Descriptors, and of
// El Torito 1.0 2.0 Boot Record Volume Descriptor.
type volumeDescriptor struct {
	Type    byte
	Version byte
	Flags   byte // SVD 8.5.3 volume flags

	SystemID, VolumeID []byte // raw, 32 bytes each (8.4.5, 8.4.6)
	VolumeSpaceSize    uint32 // 8.4.8, in logical blocks
	Escape             []byte // 8.5.6, 32 bytes
	BlockSize          uint16 // 8.4.12, 723
	BlockSizeBE        uint16 // the big-endian half of 8.4.12
	BlockSizeAgrees    bool   // both halves of 8.4.12 equal
	PathTableSize      uint32 // 8.4.13
	LTable             uint32 // 8.4.14, logical block of the type L path table
	OptLTable          uint32 // 8.4.15, optional type L path table (0: none)
	MTable             uint32 // 8.4.16, type M path table (732, big-endian)
	OptMTable          uint32 // 8.4.17, optional type M path table (0: none)
	Root               []byte // 8.4.18, the root directory record (34 bytes)
	VolumeSetID        []byte // 8.4.19, 128 bytes
	Publisher          []byte // 8.4.20
	Preparer           []byte // 8.4.21
	Application        []byte // 8.4.22
	Created, Modified  time.Time

	BootSystemID []byte // El Torito: "EL TORITO SPECIFICATION"
	BootCatalog  uint32 // El Torito: sector of the boot catalog (2048-byte units)
}

var standardID = []byte("CD001")

// decodeVolumeDescriptor decodes one 2048-byte volume descriptor. It fails
// when the standard identifier is not "CD001".
func decodeVolumeDescriptor(b []byte) (*volumeDescriptor, error) {
	if len(b) < sectorSize {
		return nil, fmt.Errorf("volume descriptor is %d bytes, want %d", len(b), sectorSize)
	}
	if !bytes.Equal(b[1:6], standardID) {
		return nil, fmt.Errorf("no CD001 standard identifier (found %q)", b[1:6])
	}
	vd := &volumeDescriptor{Type: b[0], Version: b[6]}
	switch vd.Type {
	case vdBootRecord:
		vd.BootSystemID = b[7:39]
		vd.BootCatalog = le32(b[0x47:])
	case vdPrimary, vdSupplementary:
		vd.Flags = b[7]
		vd.SystemID = b[8:40]
		vd.VolumeID = b[40:72]
		vd.VolumeSpaceSize = le32(b[80:])
		vd.Escape = b[88:120]
		vd.BlockSize = le16(b[128:])
		vd.BlockSizeBE = be16(b[130:])
		vd.BlockSizeAgrees = vd.BlockSize == vd.BlockSizeBE
		vd.PathTableSize = le32(b[132:])
		vd.LTable = le32(b[140:])
		vd.OptLTable = le32(b[144:])
		vd.MTable = be32(b[148:])
		vd.OptMTable = be32(b[152:])
		vd.Root = b[156:190]
		vd.VolumeSetID = b[190:318]
		vd.Publisher = b[318:446]
		vd.Preparer = b[446:574]
		vd.Application = b[574:702]
		vd.Created = decodeLongDate(b[813:830])
		vd.Modified = decodeLongDate(b[830:847])
	}
	return vd, nil
}

// jolietLevel returns the UCS-2 level (1–3) of a Supplementary Volume
// Descriptor's escape sequences (Joliet specification: %/@, %/C, %/E), or 0.
func (vd *volumeDescriptor) jolietLevel() int {
	if vd.Type != vdSupplementary || len(vd.Escape) < 3 {
		return 0
	}
	// The escape sequence may be anywhere in the 32-byte field; in practice
	// it is at the start.
	for i := 0; i+3 <= len(vd.Escape); i++ {
		if vd.Escape[i] == '%' && vd.Escape[i+1] == '/' {
			switch vd.Escape[i+2] {
			case '@':
				return 1
			case 'C':
				return 2
			case 'E':
				return 3
			}
		}
	}
	return 0
}

// isElTorito reports whether a Boot Record names the El Torito boot system.
func (vd *volumeDescriptor) isElTorito() bool {
	return vd.Type == vdBootRecord && bytes.HasPrefix(vd.BootSystemID, []byte("EL TORITO SPECIFICATION"))
}

// aString decodes an a- or d-character identifier: ASCII, trailing spaces and
// NULs dropped.
func aString(b []byte) string {
	return strings.TrimRight(string(bytes.ToValidUTF8(b, []byte("\uFFFD"))), " \x00")
}

// ucs2String decodes a Joliet (UCS-2 big-endian) identifier; an odd trailing
// byte is dropped. Trailing spaces and NULs are trimmed.
func ucs2String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = be16(b[2*i:])
	}
	return strings.TrimRight(string(utf16.Decode(u)), " \x00")
}

// Directory record flags (ECMA-119 9.1.6).
const (
	flagHidden      = 0x01 // existence: the user need not know of the file
	flagDirectory   = 0x02
	flagAssociated  = 0x04
	flagRecord      = 0x08
	flagProtection  = 0x10
	flagMultiExtent = 0x80
)

// minDirRecord is the length of a directory record with a 1-byte name
// (ECMA-119 9.1: 33 bytes of fixed fields, the name, a pad byte).
const minDirRecord = 34

// ECMA-119 9.1 Directory Record.
type dirRecord struct {
	Len       int    // 9.1.1 length of the record
	XARLen    uint8  // 9.1.2 extended attribute record length, in logical blocks
	Extent    uint32 // 9.1.3 location of extent (logical block)
	DataLen   uint32 // 9.1.4 data length
	Date      time.Time
	Flags     uint8  // 9.1.6
	UnitSize  uint8  // 9.1.7 file unit size (interleaving), logical blocks
	Gap       uint8  // 9.1.8 interleave gap size, logical blocks
	Name      []byte // 9.1.11 file identifier (0x00 is ".", 0x01 is "..")
	SystemUse []byte // 9.1.13 system use area
}

// decodeDirRecord decodes the record at the start of b; b must hold exactly
// the bytes the record may occupy (up to the end of its sector and of its
// directory). A record shorter than 34 bytes, longer than b, or with a name
// that does not fit in it is corrupt, as is an empty name.
func decodeDirRecord(b []byte) (dirRecord, error) {
	var r dirRecord
	if len(b) < 1 {
		return r, fmt.Errorf("directory record: no bytes")
	}
	r.Len = int(b[0])
	if r.Len < minDirRecord {
		return r, fmt.Errorf("directory record length %d is below the minimum %d", r.Len, minDirRecord)
	}
	if r.Len > len(b) {
		return r, fmt.Errorf("directory record length %d crosses the sector or directory end (%d bytes left)", r.Len, len(b))
	}
	b = b[:r.Len]
	nameLen := int(b[32])
	if nameLen == 0 {
		return r, fmt.Errorf("directory record has an empty file identifier")
	}
	if 33+nameLen > r.Len {
		return r, fmt.Errorf("file identifier of %d bytes does not fit in a %d-byte record", nameLen, r.Len)
	}
	r.XARLen = b[1]
	r.Extent = le32(b[2:])
	r.DataLen = le32(b[10:])
	r.Date = decodeRecordDate(b[18:25])
	r.Flags = b[25]
	r.UnitSize = b[26]
	r.Gap = b[27]
	r.Name = b[33 : 33+nameLen]
	su := 33 + nameLen
	if nameLen%2 == 0 {
		su++ // 9.1.12 padding field
	}
	if su < r.Len {
		r.SystemUse = b[su:]
	}
	return r, nil
}

// decodeRootRecord decodes the root directory record held in a volume
// descriptor (ECMA-119 8.4.18). Its length byte should be 34; some writers
// put other values there (a 68-byte record, libarchive iso_3), so only the
// fixed fields are read and the length byte is ignored.
func decodeRootRecord(b []byte) (dirRecord, error) {
	if len(b) < minDirRecord {
		return dirRecord{}, fmt.Errorf("root directory record is %d bytes", len(b))
	}
	c := make([]byte, minDirRecord)
	copy(c, b)
	c[0] = minDirRecord
	c[32] = 1
	r, err := decodeDirRecord(c)
	r.SystemUse = nil
	r.Name = []byte{0}
	return r, err
}

// ECMA-119 9.4 Path Table Record (type L: little-endian numbers).
type pathTableRecord struct {
	NameLen int
	XARLen  uint8
	Extent  uint32 // logical block
	Parent  uint16 // number of the parent's record (1-based)
	Name    []byte
}

// decodePathTableRecord decodes the record at the start of b and returns its
// size including the pad byte.
func decodePathTableRecord(b []byte) (pathTableRecord, int, error) {
	var r pathTableRecord
	if len(b) < 8 {
		return r, 0, fmt.Errorf("path table record: %d bytes left, need 8", len(b))
	}
	r.NameLen = int(b[0])
	r.XARLen = b[1]
	r.Extent = le32(b[2:])
	r.Parent = le16(b[6:])
	if r.NameLen == 0 {
		return r, 0, fmt.Errorf("path table record with an empty directory identifier")
	}
	n := 8 + r.NameLen
	if n > len(b) {
		return r, 0, fmt.Errorf("path table record of %d bytes crosses the end of the table", n)
	}
	r.Name = b[8:n]
	if n%2 == 1 {
		n++
	}
	if n > len(b) {
		n = len(b)
	}
	return r, n, nil
}
