package fat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testVol builds small FAT images in memory, field by field, with the
// package's own encoders, so that tests and fuzz seeds need no tools and
// can hold exactly the damage they test.
type testVol struct {
	img   []byte
	bs    bootSector
	g     *geometry
	next  uint32           // next free cluster
	slots map[uint32]int   // directory key → next free entry index
	cap   map[uint32]int64 // directory key → byte offset of its area
	seq   int
}

var testTime = time.Date(2024, 2, 29, 13, 37, 42, 500*int(time.Millisecond), time.UTC)

// newTestVol formats a volume with the given cluster count. FAT12/16 get
// a 512-entry root; FAT32 a one-cluster root at cluster 2.
func newTestVol(t testing.TB, fatType, ss, spc, clusters int) *testVol {
	t.Helper()
	bs := bootSector{
		Jump: [3]byte{0xEB, 0x3C, 0x90}, BytsPerSec: uint16(ss), SecPerClus: uint8(spc),
		RsvdSecCnt: 1, NumFATs: 2, Media: 0xF8, SecPerTrk: 32, NumHeads: 64,
		DrvNum: 0x80, BootSig: extBootSig, VolID: 0xCAFEF00D, Signature: 0xAA55,
	}
	copy(bs.OEMName[:], "MEDIAFS ")
	copy(bs.VolLab[:], "TESTVOL    ")
	copy(bs.FilSysType[:], fmt.Sprintf("FAT%-5d", fatType))
	entBits := fatType
	rootSecs := 0
	if fatType == fat32 {
		bs.RsvdSecCnt, bs.RootClus, bs.FSInfo, bs.BkBootSec = 32, 2, 1, 6
		bs.Jump[1] = 0x58
	} else {
		bs.RootEntCnt = 512
		rootSecs = 512 * 32 / ss
	}
	fatSecs := ((clusters+2)*entBits/8 + 1 + ss - 1) / ss
	total := int(bs.RsvdSecCnt) + 2*fatSecs + rootSecs + clusters*spc
	if fatType == fat32 {
		bs.FATSz32 = uint32(fatSecs)
	} else {
		bs.FATSz16 = uint16(fatSecs)
	}
	if total < 0x10000 {
		bs.TotSec16 = uint16(total)
	} else {
		bs.TotSec32 = uint32(total)
	}
	tv := &testVol{img: make([]byte, total*ss), bs: bs, next: 2, slots: map[uint32]int{}, cap: map[uint32]int64{}}
	tv.writeBoot()
	g, _, err := newGeometry(&tv.bs)
	if err != nil {
		t.Fatal(err)
	}
	tv.g = g
	tv.setFAT(0, 0x0FFFFF00|uint32(bs.Media))
	tv.setFAT(1, 0x0FFFFFFF)
	if fatType == fat32 {
		fi := fsInfo{LeadSig: fsInfoLeadSig, StrucSig: fsInfoStrucSig, FreeCount: fsInfoUnknown, NxtFree: fsInfoUnknown, TrailSig: fsInfoTrailSig}
		fi.encode(tv.img[ss:])
		copy(tv.img[6*ss:7*ss], tv.img[:ss])
		tv.alloc(1) // the root
	}
	// The label entry, first in the root.
	tv.putEntry(tv.root(), dirEntry{Name: tv.bs.VolLab, Attr: attrVolumeID})
	return tv
}

func (tv *testVol) writeBoot() { tv.bs.encode(tv.img[:tv.bs.BytsPerSec]) }

// setFAT sets cluster c's entry in every FAT copy.
func (tv *testVol) setFAT(c, val uint32) {
	g := tv.g
	for i := range g.numFATs {
		off := g.fatEntryOffset(i, c)
		switch g.fatType {
		case fat12:
			old := binary.LittleEndian.Uint16(tv.img[off:])
			if c&1 != 0 {
				old = old&0x000F | uint16(val&0xFFF)<<4
			} else {
				old = old&0xF000 | uint16(val&0xFFF)
			}
			binary.LittleEndian.PutUint16(tv.img[off:], old)
		case fat16:
			binary.LittleEndian.PutUint16(tv.img[off:], uint16(val))
		default:
			binary.LittleEndian.PutUint32(tv.img[off:], val&fat32Mask)
		}
	}
}

// alloc takes n contiguous clusters and chains them.
func (tv *testVol) alloc(n int) []uint32 {
	var cs []uint32
	for range n {
		cs = append(cs, tv.next)
		tv.next++
	}
	for i, c := range cs {
		if i+1 < len(cs) {
			tv.setFAT(c, cs[i+1])
		} else {
			tv.setFAT(c, 0x0FFFFFFF)
		}
	}
	return cs
}

// root is the root directory's key (0 on FAT12/16).
func (tv *testVol) root() uint32 { return tv.g.rootCluster }

// entryOffset is the byte offset of entry i of directory dir.
func (tv *testVol) entryOffset(dir uint32, i int) int64 {
	if dir == 0 {
		if i >= tv.g.rootEntries {
			panic("root directory full")
		}
		return tv.g.sectorOffset(tv.g.rootStart) + int64(i)*dirEntrySize
	}
	if i >= tv.g.clusterSize/dirEntrySize {
		panic("test directory full")
	}
	return tv.g.clusterOffset(dir) + int64(i)*dirEntrySize
}

// putRaw writes a raw 32-byte entry into the next slot of dir.
func (tv *testVol) putRaw(dir uint32, raw []byte) int64 {
	off := tv.entryOffset(dir, tv.slots[dir])
	tv.slots[dir]++
	copy(tv.img[off:off+dirEntrySize], raw)
	return off
}

func (tv *testVol) putEntry(dir uint32, e dirEntry) int64 {
	var raw [dirEntrySize]byte
	e.encode(raw[:])
	return tv.putRaw(dir, raw[:])
}

// shortFor makes an 8.3 name for a long one: the name itself when it
// fits, else BASE~N.EXT.
func (tv *testVol) shortFor(name string) (sfn [11]byte, needLFN bool) {
	copy(sfn[:], "           ")
	base, ext, _ := strings.Cut(name, ".")
	if len(base) >= 1 && len(base) <= 8 && len(ext) <= 3 && name == strings.ToUpper(name) && !strings.ContainsAny(name, " +,;=[]") && isASCII(name) {
		copy(sfn[:8], base)
		copy(sfn[8:], ext)
		return sfn, false
	}
	tv.seq++
	b := []byte(strings.ToUpper(filterASCII(base)))
	if len(b) > 5 {
		b = b[:5]
	}
	copy(sfn[:], fmt.Sprintf("%s~%d", b, tv.seq))
	e := []byte(strings.ToUpper(filterASCII(ext)))
	if len(e) > 3 {
		e = e[:3]
	}
	copy(sfn[8:], e)
	return sfn, true
}

func isASCII(s string) bool {
	for _, r := range s {
		if r >= 0x80 {
			return false
		}
	}
	return true
}

func filterASCII(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && r > ' ' && r != '.' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "X"
	}
	return b.String()
}

// add writes name's long-name slots (if it needs them) and short entry
// into dir and returns the short entry's offset.
func (tv *testVol) add(dir uint32, name string, attr uint8, first uint32, size uint32) int64 {
	sfn, needLFN := tv.shortFor(name)
	if needLFN {
		slots, err := lfnSlots(name, shortNameChecksum(sfn))
		if err != nil {
			panic(err)
		}
		for _, s := range slots {
			var raw [dirEntrySize]byte
			s.encode(raw[:])
			tv.putRaw(dir, raw[:])
		}
	}
	d, tm, tenths := encodeTime(testTime, time.UTC)
	e := dirEntry{Name: sfn, Attr: attr, CrtTimeTenth: tenths, CrtTime: tm, CrtDate: d, LstAccDate: d, WrtTime: tm, WrtDate: d, FileSize: size}
	e.setCluster(first)
	return tv.putEntry(dir, e)
}

// addFile stores data in fresh contiguous clusters.
func (tv *testVol) addFile(dir uint32, name string, data []byte) (first uint32, entryOff int64) {
	if len(data) > 0 {
		cs := tv.alloc(int(tv.g.clustersFor(int64(len(data)))))
		first = cs[0]
		copy(tv.img[tv.g.clusterOffset(first):], data)
	}
	return first, tv.add(dir, name, attrArchive, first, uint32(len(data)))
}

// mkdir makes a one-cluster subdirectory with its dot entries.
func (tv *testVol) mkdir(parent uint32, name string) uint32 {
	c := tv.alloc(1)[0]
	clear(tv.img[tv.g.clusterOffset(c) : tv.g.clusterOffset(c)+int64(tv.g.clusterSize)])
	dot := dirEntry{Name: [11]byte([]byte(".          ")), Attr: attrDirectory}
	dot.setCluster(c)
	tv.putEntry(c, dot)
	dotdot := dirEntry{Name: [11]byte([]byte("..         ")), Attr: attrDirectory}
	if parent != tv.root() {
		dotdot.setCluster(parent)
	}
	tv.putEntry(c, dotdot)
	tv.add(parent, name, attrDirectory, c, 0)
	return c
}
