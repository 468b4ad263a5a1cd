package fat

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Boot-sector constants (fatgen103 "Boot Sector and BPB").
const (
	bootSigOffset    = 510 // 0x55 0xAA, at 510 whatever the sector size
	extBootSig       = 0x29
	extBootSigSerial = 0x28 // older extended BPB: serial number only
	stateDirty       = 0x01 // NT state byte (Reserved1) bit 0: volume dirty
	stateHardErr     = 0x02 // bit 1: a media error was seen (surface test wanted)
	extFlagNoMirror  = 0x80 // FAT32 ExtFlags bit 7: only the active FAT is used
	extFlagActiveFAT = 0x0F // FAT32 ExtFlags bits 0-3: the active FAT
)

// bootSector is the boot sector and its BIOS Parameter Block: fatgen103
// "Boot Sector and BPB" (the DOS 2.0 BPB at 11..23, the DOS 3.31 additions
// at 24..35, then either the FAT12/16 extended BPB at 36 or the FAT32 BPB at
// 36 with its extended BPB at 64).
type bootSector struct {
	Jump       [3]byte // 0: EB xx 90 or E9 xx xx
	OEMName    [8]byte // 3
	BytsPerSec uint16  // 11
	SecPerClus uint8   // 13
	RsvdSecCnt uint16  // 14
	NumFATs    uint8   // 16
	RootEntCnt uint16  // 17
	TotSec16   uint16  // 19
	Media      uint8   // 21
	FATSz16    uint16  // 22
	SecPerTrk  uint16  // 24
	NumHeads   uint16  // 26
	HiddSec    uint32  // 28
	TotSec32   uint32  // 32

	// FAT32 only (offset 36).
	FATSz32   uint32   // 36
	ExtFlags  uint16   // 40
	FSVer     uint16   // 42
	RootClus  uint32   // 44
	FSInfo    uint16   // 48
	BkBootSec uint16   // 50
	Reserved  [12]byte // 52

	// Extended BPB: offset 36 on FAT12/16, 64 on FAT32.
	DrvNum     uint8
	Reserved1  uint8 // Windows NT: bit 0 dirty, bit 1 surface test wanted
	BootSig    uint8 // 0x29 (0x28: only VolID follows)
	VolID      uint32
	VolLab     [11]byte
	FilSysType [8]byte // informational only

	Signature uint16 // 510: 0xAA55 (little-endian 55 AA)
}

// fat32Shape reports whether the BPB has the FAT32 shape: FATSz16 is zero
// and FATSz32 is not. Linux and Windows decide FAT32 by this shape.
func (b *bootSector) fat32Shape() bool { return b.FATSz16 == 0 && b.FATSz32 != 0 }

// extOffset is where the extended BPB starts.
func (b *bootSector) extOffset() int {
	if b.fat32Shape() {
		return 64
	}
	return 36
}

// hasExtBPB reports whether the extended boot signature is present.
func (b *bootSector) hasExtBPB() bool {
	return b.BootSig == extBootSig || b.BootSig == extBootSigSerial
}

// totalSectors is TotSec16, or TotSec32 when TotSec16 is zero (fatgen103).
func (b *bootSector) totalSectors() int64 {
	if b.TotSec16 != 0 {
		return int64(b.TotSec16)
	}
	return int64(b.TotSec32)
}

// fatSize is the size of one FAT in sectors.
func (b *bootSector) fatSize() int64 {
	if b.FATSz16 != 0 {
		return int64(b.FATSz16)
	}
	return int64(b.FATSz32)
}

// decodeBootSector decodes the first 512 bytes of p. It checks nothing; see
// probeBootSector.
func decodeBootSector(p []byte) (*bootSector, error) {
	if len(p) < 512 {
		return nil, fmt.Errorf("boot sector: %d bytes, want at least 512", len(p))
	}
	le := binary.LittleEndian
	b := &bootSector{
		BytsPerSec: le.Uint16(p[11:]),
		SecPerClus: p[13],
		RsvdSecCnt: le.Uint16(p[14:]),
		NumFATs:    p[16],
		RootEntCnt: le.Uint16(p[17:]),
		TotSec16:   le.Uint16(p[19:]),
		Media:      p[21],
		FATSz16:    le.Uint16(p[22:]),
		SecPerTrk:  le.Uint16(p[24:]),
		NumHeads:   le.Uint16(p[26:]),
		HiddSec:    le.Uint32(p[28:]),
		TotSec32:   le.Uint32(p[32:]),
		Signature:  le.Uint16(p[bootSigOffset:]),
	}
	copy(b.Jump[:], p[0:3])
	copy(b.OEMName[:], p[3:11])
	if b.FATSz16 == 0 {
		// The FAT32 fields are decoded whenever FATSz16 is zero, so that
		// fat32Shape can look at FATSz32.
		b.FATSz32 = le.Uint32(p[36:])
	}
	if b.fat32Shape() {
		b.ExtFlags = le.Uint16(p[40:])
		b.FSVer = le.Uint16(p[42:])
		b.RootClus = le.Uint32(p[44:])
		b.FSInfo = le.Uint16(p[48:])
		b.BkBootSec = le.Uint16(p[50:])
		copy(b.Reserved[:], p[52:64])
	}
	x := b.extOffset()
	b.DrvNum = p[x]
	b.Reserved1 = p[x+1]
	b.BootSig = p[x+2]
	if b.hasExtBPB() {
		b.VolID = le.Uint32(p[x+3:])
	}
	if b.BootSig == extBootSig {
		copy(b.VolLab[:], p[x+7:x+18])
		copy(b.FilSysType[:], p[x+18:x+26])
	}
	return b, nil
}

// encode writes the boot sector's fields into p (at least 512 bytes),
// leaving the boot code alone.
func (b *bootSector) encode(p []byte) {
	le := binary.LittleEndian
	copy(p[0:3], b.Jump[:])
	copy(p[3:11], b.OEMName[:])
	le.PutUint16(p[11:], b.BytsPerSec)
	p[13] = b.SecPerClus
	le.PutUint16(p[14:], b.RsvdSecCnt)
	p[16] = b.NumFATs
	le.PutUint16(p[17:], b.RootEntCnt)
	le.PutUint16(p[19:], b.TotSec16)
	p[21] = b.Media
	le.PutUint16(p[22:], b.FATSz16)
	le.PutUint16(p[24:], b.SecPerTrk)
	le.PutUint16(p[26:], b.NumHeads)
	le.PutUint32(p[28:], b.HiddSec)
	le.PutUint32(p[32:], b.TotSec32)
	if b.fat32Shape() {
		le.PutUint32(p[36:], b.FATSz32)
		le.PutUint16(p[40:], b.ExtFlags)
		le.PutUint16(p[42:], b.FSVer)
		le.PutUint32(p[44:], b.RootClus)
		le.PutUint16(p[48:], b.FSInfo)
		le.PutUint16(p[50:], b.BkBootSec)
		copy(p[52:64], b.Reserved[:])
	}
	x := b.extOffset()
	p[x] = b.DrvNum
	p[x+1] = b.Reserved1
	p[x+2] = b.BootSig
	if b.hasExtBPB() {
		le.PutUint32(p[x+3:], b.VolID)
	}
	if b.BootSig == extBootSig {
		copy(p[x+7:x+18], b.VolLab[:])
		copy(p[x+18:x+26], b.FilSysType[:])
	}
	le.PutUint16(p[bootSigOffset:], b.Signature)
}

func isPow2(n int) bool { return n > 0 && n&(n-1) == 0 }

// validMedia reports whether m is a media descriptor fatgen103 allows:
// 0xF0 or 0xF8..0xFF.
func validMedia(m uint8) bool { return m == 0xF0 || m >= 0xF8 }

// check applies the tests Windows (fastfat FatIsBootSectorFat) and Linux
// (fat_read_bpb) apply before they believe a sector is a FAT boot sector.
// It is deliberately tolerant: the jump instruction may be missing when
// the extended boot signature vouches for the BPB instead (some cameras and
// DOS 1.x-style media), and the 0x55AA signature is not required.
func (b *bootSector) check() error {
	switch string(b.OEMName[:]) {
	case "EXFAT   ":
		return fmt.Errorf("exFAT, not FAT")
	case "NTFS    ":
		return fmt.Errorf("NTFS, not FAT")
	}
	if j := b.Jump[0]; j != 0xEB && j != 0xE9 && j != 0x49 && !b.hasExtBPB() {
		return fmt.Errorf("no jump instruction (0x%02X) and no extended boot signature", j)
	}
	if n := int(b.BytsPerSec); !isPow2(n) || n < 512 || n > 4096 {
		return fmt.Errorf("bytes per sector %d (want 512, 1024, 2048 or 4096)", n)
	}
	if !isPow2(int(b.SecPerClus)) {
		return fmt.Errorf("sectors per cluster %d is not a power of two", b.SecPerClus)
	}
	if b.RsvdSecCnt == 0 {
		return fmt.Errorf("no reserved sectors")
	}
	if b.NumFATs == 0 {
		return fmt.Errorf("no FATs")
	}
	if !validMedia(b.Media) {
		return fmt.Errorf("media descriptor 0x%02X", b.Media)
	}
	if b.totalSectors() == 0 {
		return fmt.Errorf("total sector count is zero")
	}
	if b.fatSize() == 0 {
		return fmt.Errorf("FAT size is zero")
	}
	if !b.fat32Shape() && b.RootEntCnt == 0 {
		return fmt.Errorf("FAT12/16 boot sector without root directory entries")
	}
	return nil
}

// Probe reports whether boot (at least the first 512 bytes of a volume)
// plausibly is a FAT boot sector, and if so its bytes per sector. It
// rejects exFAT and NTFS boot sectors, which share the layout's first
// bytes.
func Probe(boot []byte) (bytesPerSector int, ok bool) {
	b, err := decodeBootSector(boot)
	if err != nil || b.check() != nil {
		return 0, false
	}
	return int(b.BytsPerSec), true
}

// FAT types.
const (
	fat12 = 12
	fat16 = 16
	fat32 = 32
)

// fatgen103 "FAT Type Determination" thresholds.
const (
	minFAT16Clusters = 4085
	minFAT32Clusters = 65525
	// The largest cluster counts each entry width can describe: cluster
	// numbers run 2..count+1 and must stay below the BAD marker.
	maxFAT12Clusters = 0xFF5
	maxFAT16Clusters = 0xFFF5
	maxFAT32Clusters = 0x0FFFFFF5
)

// geometry is the volume layout derived from the BPB. Every conversion
// between clusters, sectors and bytes goes through its methods; nothing
// else in the package multiplies by the sector or cluster size.
type geometry struct {
	fatType      int
	sectorSize   int   // BPB bytes per sector
	secPerClus   int   // sectors per cluster
	clusterSize  int   // bytes
	reserved     int64 // sectors before the first FAT
	numFATs      int
	fatSectors   int64 // sectors per FAT
	rootEntries  int   // FAT12/16 fixed root entries
	rootSectors  int64 // FAT12/16 fixed root sectors
	rootStart    int64 // first sector of the FAT12/16 root
	dataStart    int64 // first sector of cluster 2
	totalSectors int64
	clusters     uint32 // valid cluster numbers are 2..clusters+1
	rootCluster  uint32 // FAT32
}

// newGeometry derives the layout from a checked boot sector. The returned
// warnings describe tolerated deviations.
func newGeometry(b *bootSector) (*geometry, []string, error) {
	var warn []string
	g := &geometry{
		sectorSize:   int(b.BytsPerSec),
		secPerClus:   int(b.SecPerClus),
		reserved:     int64(b.RsvdSecCnt),
		numFATs:      int(b.NumFATs),
		fatSectors:   b.fatSize(),
		totalSectors: b.totalSectors(),
	}
	g.clusterSize = g.sectorSize * g.secPerClus
	if g.clusterSize > 64<<10 {
		warn = append(warn, fmt.Sprintf("cluster size %d bytes is larger than 64 KiB; many systems cannot read this volume", g.clusterSize))
	}
	shapeFAT32 := b.fat32Shape()
	if !shapeFAT32 {
		g.rootEntries = int(b.RootEntCnt)
		// Root-directory sectors: fatgen103 rounds up; Linux and Windows
		// truncate. They differ only when RootEntCnt*32 is not a whole
		// number of sectors, which is itself a deviation.
		rootBytes := int64(g.rootEntries) * dirEntrySize
		g.rootSectors = (rootBytes + int64(g.sectorSize) - 1) / int64(g.sectorSize)
		if rootBytes%int64(g.sectorSize) != 0 {
			warn = append(warn, fmt.Sprintf("%d root directory entries do not fill whole sectors", g.rootEntries))
		}
	} else if b.RootEntCnt != 0 {
		warn = append(warn, fmt.Sprintf("FAT32 boot sector has %d root entries (ignored)", b.RootEntCnt))
	}
	g.rootStart = g.reserved + int64(g.numFATs)*g.fatSectors
	g.dataStart = g.rootStart + g.rootSectors
	if g.dataStart >= g.totalSectors {
		return nil, nil, fmt.Errorf("the FATs and root directory (%d sectors) fill the whole %d-sector volume", g.dataStart, g.totalSectors)
	}
	count := (g.totalSectors - g.dataStart) / int64(g.secPerClus)

	switch {
	case shapeFAT32:
		g.fatType = fat32
		if count < minFAT32Clusters {
			warn = append(warn, fmt.Sprintf("FAT32 volume with only %d clusters (fatgen103 wants at least %d); read as FAT32, as Linux and Windows do", count, minFAT32Clusters))
		}
	case count < minFAT16Clusters:
		g.fatType = fat12
	default:
		g.fatType = fat16
		if count < minFAT16Clusters+2 {
			warn = append(warn, fmt.Sprintf("%d clusters: FAT16 by fatgen103 and Linux, but Windows' fastfat reads FAT12 below 4087", count))
		}
		if count >= minFAT32Clusters {
			warn = append(warn, fmt.Sprintf("%d clusters is too many for a FAT16 boot sector", count))
		}
	}
	// The count is capped by what the FAT can describe (the FAT holds
	// fatSectors*sectorSize*8/bits entries, two of them reserved) and by
	// what the entry width can number.
	entries := g.fatSectors * int64(g.sectorSize) * 8 / int64(g.fatType)
	if g.fatType == fat32 {
		entries = g.fatSectors * int64(g.sectorSize) / 4
	}
	limit := min(entries-2, int64(maxClusters(g.fatType)))
	if count > limit {
		if limit < 0 {
			limit = 0
		}
		warn = append(warn, fmt.Sprintf("the data area has room for %d clusters but the FAT describes only %d", count, limit))
		count = limit
	}
	g.clusters = uint32(count)
	if g.fatType == fat32 {
		g.rootCluster = b.RootClus
		if !g.validCluster(g.rootCluster) {
			return nil, nil, fmt.Errorf("root directory cluster %d is outside the volume (clusters 2..%d)", g.rootCluster, g.clusters+1)
		}
	}
	return g, warn, nil
}

func maxClusters(fatType int) uint32 {
	switch fatType {
	case fat12:
		return maxFAT12Clusters
	case fat16:
		return maxFAT16Clusters
	}
	return maxFAT32Clusters
}

// validCluster reports whether c numbers a cluster of the data area.
func (g *geometry) validCluster(c uint32) bool { return c >= 2 && c-2 < g.clusters }

// clusterSector is the first sector of cluster c (which must be valid).
func (g *geometry) clusterSector(c uint32) int64 {
	return g.dataStart + int64(c-2)*int64(g.secPerClus)
}

// sectorOffset is the byte offset of sector s on the volume.
func (g *geometry) sectorOffset(s int64) int64 { return s * int64(g.sectorSize) }

// clusterOffset is the byte offset of cluster c on the volume.
func (g *geometry) clusterOffset(c uint32) int64 { return g.sectorOffset(g.clusterSector(c)) }

// clusterShift is log2 of the cluster size.
func (g *geometry) clusterShift() uint { return uint(bits.TrailingZeros(uint(g.clusterSize))) }

// clustersFor is the number of clusters n bytes need.
func (g *geometry) clustersFor(n int64) int64 {
	return (n + int64(g.clusterSize) - 1) >> g.clusterShift()
}

// fatEntryOffset is the byte offset of cluster c's entry in FAT copy i
// (fatgen103: FATOffset = N*3/2, N*2 or N*4).
func (g *geometry) fatEntryOffset(i int, c uint32) int64 {
	var off int64
	switch g.fatType {
	case fat12:
		off = int64(c) + int64(c)/2
	case fat16:
		off = int64(c) * 2
	default:
		off = int64(c) * 4
	}
	return g.sectorOffset(g.reserved+int64(i)*g.fatSectors) + off
}

// fatBytes is the number of bytes of one FAT that describe clusters
// 0..clusters+1.
func (g *geometry) fatBytes() int64 {
	n := int64(g.clusters) + 2
	switch g.fatType {
	case fat12:
		return n + (n+1)/2
	case fat16:
		return n * 2
	}
	return n * 4
}

// rootBytes is the size of the FAT12/16 fixed root directory region.
func (g *geometry) rootBytes() int64 { return g.sectorOffset(g.rootSectors) }

// volumeBytes is the size the BPB declares for the volume.
func (g *geometry) volumeBytes() int64 { return g.sectorOffset(g.totalSectors) }

// FSInfo signatures and offsets (fatgen103 "FAT32 FSInfo Sector
// Structure"). They sit in the first 512 bytes of the sector whatever its
// size.
const (
	fsInfoLeadSig  = 0x41615252 // offset 0
	fsInfoStrucSig = 0x61417272 // offset 484
	fsInfoTrailSig = 0xAA550000 // offset 508
	fsInfoUnknown  = 0xFFFFFFFF
)

// fsInfo is the FAT32 FSInfo sector. Its counts are hints: a reader
// validates them and a writer keeps them up to date.
type fsInfo struct {
	LeadSig   uint32 // 0
	StrucSig  uint32 // 484
	FreeCount uint32 // 488: free clusters, 0xFFFFFFFF if unknown
	NxtFree   uint32 // 492: where to start looking for a free cluster
	TrailSig  uint32 // 508
}

func decodeFSInfo(p []byte) (fsInfo, bool) {
	if len(p) < 512 {
		return fsInfo{}, false
	}
	le := binary.LittleEndian
	fi := fsInfo{
		LeadSig:   le.Uint32(p[0:]),
		StrucSig:  le.Uint32(p[484:]),
		FreeCount: le.Uint32(p[488:]),
		NxtFree:   le.Uint32(p[492:]),
		TrailSig:  le.Uint32(p[508:]),
	}
	return fi, fi.LeadSig == fsInfoLeadSig && fi.StrucSig == fsInfoStrucSig && fi.TrailSig == fsInfoTrailSig
}

func (fi *fsInfo) encode(p []byte) {
	le := binary.LittleEndian
	le.PutUint32(p[0:], fi.LeadSig)
	le.PutUint32(p[484:], fi.StrucSig)
	le.PutUint32(p[488:], fi.FreeCount)
	le.PutUint32(p[492:], fi.NxtFree)
	le.PutUint32(p[508:], fi.TrailSig)
}
