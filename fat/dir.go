package fat

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// node is a directory entry as the reader presents it: the short entry,
// the name to show (the long name when a valid one precedes the entry) and
// where the entry lives on the volume.
type node struct {
	name   string // long name, or the short name with the NT case flags applied
	short  string // the short name as stored, "NAME.EXT"
	ent    dirEntry
	off    int64 // byte offset on the volume of the short entry
	lfnOff int64 // byte offset of the first long-name slot (off if none)
	root   bool
}

func (n *node) isDir() bool { return n.root || n.ent.isDir() }

// dirParser turns a directory's 32-byte entries, fed in order, into nodes,
// assembling long names as fatgen103 "FAT Long Directory Entries" says:
// slots N|0x40, N-1, …, 1 with one checksum, directly followed by the short
// entry whose name has that checksum. Slots that break the sequence, and
// sequences that do not match their short entry, are ignored, so the short
// name shows (as Windows and Linux do).
type dirParser struct {
	cp      *charmap.Charmap
	fatType int

	lfn    [maxLFNSlots][lfnChars]uint16
	count  int // slots in the sequence being assembled; 0 = none
	want   int // ordinal of the next slot expected
	chk    uint8
	lfnOff int64

	label      *dirEntry // the first (live) volume-label entry seen
	labelFound bool
}

func (p *dirParser) reset() { p.count = 0 }

// feed processes one raw entry at volume offset off. It returns the node
// for a file or directory entry (nil for anything else) and end = true at
// the end-of-directory marker.
func (p *dirParser) feed(raw []byte, off int64) (n *node, end bool) {
	switch raw[0] {
	case nameEnd:
		return nil, true
	case nameFree:
		p.reset()
		return nil, false
	}
	e := decodeDirEntry(raw)
	if e.isLFN() {
		l := decodeLFN(raw)
		ord := int(l.Ord & lfnOrdMask)
		switch {
		case l.Ord&lfnLast != 0 && ord >= 1 && ord <= maxLFNSlots:
			p.count, p.want, p.chk, p.lfnOff = ord, ord-1, l.Chksum, off
			p.lfn[ord-1] = l.chars
		case p.count > 0 && l.Ord&lfnLast == 0 && ord == p.want && ord >= 1 && l.Chksum == p.chk:
			p.lfn[ord-1] = l.chars
			p.want--
		default:
			p.reset()
		}
		return nil, false
	}
	defer p.reset()
	switch {
	case e.isLabel():
		if !p.labelFound {
			p.label, p.labelFound = &e, true
		}
		return nil, false
	case e.isDot(), e.Attr&(attrDirectory|attrVolumeID) == attrDirectory|attrVolumeID:
		return nil, false
	}
	n = &node{ent: e, off: off, lfnOff: off}
	n.short, n.name = shortName(p.cp, &e)
	if p.count > 0 && p.want == 0 && p.chk == shortNameChecksum(e.Name) {
		if long, ok := p.longName(); ok {
			n.name, n.lfnOff = long, p.lfnOff
		}
	}
	if n.name == "" || n.name == "." || n.name == ".." {
		return nil, false // an unusable short name (fsck.fat renames these)
	}
	return n, false
}

// longName assembles the collected slots: the name ends at the first
// 0x0000 (the rest is 0xFFFF padding). Unpaired surrogates become U+FFFD.
// A name that could not be a path element is refused.
func (p *dirParser) longName() (string, bool) {
	u := make([]uint16, 0, p.count*lfnChars)
	for i := range p.count {
		u = append(u, p.lfn[i][:]...)
	}
	for i, c := range u {
		if c == 0 {
			u = u[:i]
			break
		}
	}
	s := string(utf16.Decode(u))
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") || !utf8.ValidString(s) {
		return "", false
	}
	return s, true
}

// dirKey identifies a directory for cycle detection: its first cluster,
// with every way of naming the root mapped to one key.
func (v *FS) dirKey(n *node) uint32 {
	if n.root {
		return v.g.rootCluster // 0 on FAT12/16
	}
	c := n.ent.cluster(v.g.fatType)
	if c == 0 { // as in "..": cluster 0 means the root
		return v.g.rootCluster
	}
	return c
}

// scanDir feeds every entry of directory d to fn, sector by sector through
// the cache, until fn says stop or the directory ends. Reading stops after
// maxDirEntries entries, and at the first sector that cannot be read.
func (v *FS) scanDir(d *node, fn func(raw []byte, off int64) (stop bool)) error {
	return v.forEachDirSector(d, func(sec int64, slots int) (bool, error) {
		b, err := v.cache.Get(sec)
		if err != nil {
			return true, err
		}
		defer v.cache.Release(b)
		base := v.g.sectorOffset(sec)
		for i := range slots {
			if fn(b.Data[i*dirEntrySize:(i+1)*dirEntrySize], base+int64(i*dirEntrySize)) {
				return true, nil
			}
		}
		return false, nil
	})
}

// forEachDirSector calls fn with each sector of directory d in order, and
// the number of its 32-byte entry slots that belong to the directory,
// until fn says stop or returns an error: the fixed root region of
// FAT12/16, or the cluster chain, walked through the active FAT, of at
// most maxDirEntries entries. An error in following the chain ends the
// walk with that error.
func (v *FS) forEachDirSector(d *node, fn func(sec int64, slots int) (stop bool, err error)) error {
	perSector := v.g.sectorSize / dirEntrySize
	if d.root && v.g.fatType != fat32 {
		v.cache.Preload(v.g.rootStart, v.g.rootSectors)
		left := v.g.rootEntries
		for s := int64(0); s < v.g.rootSectors && left > 0; s++ {
			stop, err := fn(v.g.rootStart+s, min(perSector, left))
			if stop || err != nil {
				return err
			}
			left -= perSector
		}
		return nil
	}

	first := v.dirKey(d)
	perCluster := v.g.clusterSize / dirEntrySize
	ch := v.newChain(first, (maxDirEntries+int64(perCluster)-1)/int64(perCluster))
	var loadedTo uint32 // clusters [0, loadedTo) were preloaded
	for idx := uint32(0); ; idx++ {
		want := uint32(1)
		if idx >= loadedTo {
			want = uint32(max(1, 64<<10/v.g.clusterSize))
		}
		cl, cont, err := ch.locate(idx, want)
		if errors.Is(err, errChainEnd) {
			return nil
		}
		if err != nil {
			return err
		}
		sec := v.g.clusterSector(cl)
		if idx >= loadedTo {
			// Up to 64 KiB of contiguous clusters from here in one request
			// (the cache then holds their sectors for the loop below).
			k := min(cont, uint32(max(1, 64<<10/v.g.clusterSize)))
			v.cache.Preload(sec, int64(k)*int64(v.g.secPerClus))
			loadedTo = idx + k
		}
		for s := range v.g.secPerClus {
			stop, err := fn(sec+int64(s), perSector)
			if stop || err != nil {
				return err
			}
		}
	}
}

// readDir lists directory d in on-disk order. A sector that cannot be read
// does not end the listing: the entries of the other sectors are listed,
// and the error is a *DirDamageError (see dirReader).
func (v *FS) readDir(d *node) ([]*node, error) {
	r := dirReader{v: v, p: dirParser{cp: v.cp, fatType: v.g.fatType}}
	err := v.forEachDirSector(d, r.sector)
	return r.finish(err)
}

// rootLabel finds the volume-label entry of the root directory.
func (v *FS) rootLabel() (string, error) {
	p := dirParser{cp: v.cp, fatType: v.g.fatType}
	err := v.scanDir(v.root, func(raw []byte, off int64) bool {
		_, end := p.feed(raw, off)
		return end || p.labelFound
	})
	if err != nil || p.label == nil {
		return "", err
	}
	return decodeLabel(v.cp, p.label.Name), nil
}
