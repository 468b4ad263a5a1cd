package iso9660

import (
	"encoding/binary"
)

// A tiny ISO 9660 writer for tests: it lays out raw records by the rules of
// ECMA-119 so that tests can make what no installed tool writes (logical
// blocks of 512 and 1024 bytes, files packed mid-sector, multi-extent files
// with holes, interleaving, extended attribute records, damaged records).
// The data area is filled with 0xCC so that a read outside a file's extents
// shows.

type tFile struct {
	name     string  // identifier as recorded (";1" is added for files)
	data     []byte  // content
	children []tFile // for a directory (dir set)
	dir      bool

	sections []int // multi-extent: lengths of all sections but the last (whole blocks); a 1-block hole follows each
	dropLast bool  // omit the final section's record (damage)
	unit     int   // interleave: file unit size in blocks
	gap      int   // interleave: gap in blocks
	xar      int   // extended attribute record length in blocks
	flags    byte  // extra flags (hidden, associated)
	atZero   bool  // empty file recorded at extent 0
	beyond   bool  // empty file recorded past the end of the volume
	su       []byte
}

type tImage struct {
	lbs           int
	unalignedDirs bool // start directories one block into a sector (lbs < 2048)
	volumeID      string
	rootSU        []byte // system use of the root's "." record
	files         []tFile

	blockSizeField []byte // override of PVD bytes 128..131 (damage)
}

// tLayout records where the builder put each file.
type tLayout struct {
	extents []Extent
}

type tBuilder struct {
	im     tImage
	lbs    int64
	img    []byte
	cursor int64 // next free byte, block aligned
	layout map[string]tLayout
}

var tDate = []byte{120, 5, 6, 7, 8, 9, 0} // 2020-05-06 07:08:09 UTC

func put733(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func put723(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

// record encodes an ECMA-119 9.1 directory record.
func record(name []byte, extent uint32, size uint32, flags byte, xar, unit, gap int, su []byte) []byte {
	n := 33 + len(name)
	if len(name)%2 == 0 {
		n++
	}
	n += len(su)
	if n%2 == 1 {
		n++
	}
	r := make([]byte, n)
	r[0] = byte(n)
	r[1] = byte(xar)
	put733(r[2:], extent)
	put733(r[10:], size)
	copy(r[18:], tDate)
	r[25] = flags
	r[26] = byte(unit)
	r[27] = byte(gap)
	put723(r[28:], 1)
	r[32] = byte(len(name))
	copy(r[33:], name)
	su0 := 33 + len(name)
	if len(name)%2 == 0 {
		su0++
	}
	copy(r[su0:], su)
	return r
}

func (b *tBuilder) grow(end int64) {
	if end > int64(len(b.img)) {
		n := make([]byte, end)
		copy(n, b.img)
		for i := len(b.img); i < len(n); i++ {
			n[i] = 0xCC
		}
		b.img = n
	}
}

// alloc reserves n bytes (rounded up to blocks) and returns the first block.
func (b *tBuilder) alloc(n int64) int64 {
	blk := b.cursor / b.lbs
	b.cursor += (n + b.lbs - 1) / b.lbs * b.lbs
	b.grow(b.cursor)
	return blk
}

// layoutDir places records starting at byte offset start so that none
// crosses a 2048-byte sector, and returns the bytes and their length.
func layoutDir(records [][]byte, start int64) []byte {
	var out []byte
	pos := start
	for _, r := range records {
		if sectorFloor(pos) != sectorFloor(pos+int64(len(r))-1) {
			pad := sectorCeil(pos) - pos
			out = append(out, make([]byte, pad)...)
			pos += pad
		}
		out = append(out, r...)
		pos += int64(len(r))
	}
	return out
}

type tDir struct {
	path     string
	files    []tFile
	extent   int64
	size     int64
	parent   *tDir
	children []*tDir
}

func (im tImage) build() ([]byte, map[string]tLayout) {
	if im.lbs == 0 {
		im.lbs = 2048
	}
	b := &tBuilder{im: im, lbs: int64(im.lbs), layout: map[string]tLayout{}}
	b.grow(18 * sectorSize)
	clear(b.img[:18*sectorSize])
	b.cursor = 18 * sectorSize

	// Path table (root and first-level directories) at a fixed place.
	ptBlock := b.alloc(sectorSize)

	root := &tDir{path: "", files: im.files}
	var all []*tDir
	var collect func(d *tDir)
	collect = func(d *tDir) {
		all = append(all, d)
		for _, f := range d.files {
			if f.dir {
				c := &tDir{path: d.path + f.name + "/", files: f.children, parent: d}
				d.children = append(d.children, c)
				collect(c)
			}
		}
	}
	collect(root)

	// Directories first: their sizes depend only on their records.
	for _, d := range all {
		if im.unalignedDirs && b.lbs < sectorSize {
			b.alloc(b.lbs) // one block of padding: the directory starts mid-sector
		}
		start := b.cursor
		recs := b.records(d, true)
		d.size = (int64(len(layoutDir(recs, start))) + b.lbs - 1) / b.lbs * b.lbs
		d.extent = b.alloc(d.size)
		clear(b.img[start : start+d.size])
	}
	// Then the files.
	for _, d := range all {
		for i := range d.files {
			b.placeFile(d, &d.files[i])
		}
	}
	// Now write the records with the real extents.
	for _, d := range all {
		recs := b.records(d, false)
		start := d.extent * b.lbs
		copy(b.img[start:], layoutDir(recs, start))
	}
	volBlocks := b.cursor / b.lbs

	// Path table (type L): root, then the first-level directories.
	pt := []byte{1, 0, 0, 0, 0, 0, 1, 0, 0, 0}
	binary.LittleEndian.PutUint32(pt[2:], uint32(root.extent))
	for _, c := range root.children {
		name := c.path[:len(c.path)-1]
		r := make([]byte, 8+len(name)+len(name)%2)
		r[0] = byte(len(name))
		binary.LittleEndian.PutUint32(r[2:], uint32(c.extent))
		binary.LittleEndian.PutUint16(r[6:], 1)
		copy(r[8:], name)
		pt = append(pt, r...)
	}
	clear(b.img[ptBlock*b.lbs : ptBlock*b.lbs+sectorSize])
	copy(b.img[ptBlock*b.lbs:], pt)

	// PVD (ECMA-119 8.4) and terminator.
	pvd := b.img[16*sectorSize : 17*sectorSize]
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	for i := 8; i < 72; i++ {
		pvd[i] = ' '
	}
	vid := im.volumeID
	if vid == "" {
		vid = "TESTVOL"
	}
	copy(pvd[40:], vid)
	put733(pvd[80:], uint32(volBlocks))
	put723(pvd[120:], 1)
	put723(pvd[124:], 1)
	put723(pvd[128:], uint16(b.lbs))
	if im.blockSizeField != nil {
		copy(pvd[128:132], im.blockSizeField)
	}
	put733(pvd[132:], uint32(len(pt)))
	binary.LittleEndian.PutUint32(pvd[140:], uint32(ptBlock))
	copy(pvd[156:], record([]byte{0}, uint32(root.extent), uint32(root.size), flagDirectory, 0, 0, 0, nil))
	for i := 190; i < 813; i++ {
		pvd[i] = ' '
	}
	copy(pvd[813:], "2020050607080900\x00")
	copy(pvd[830:], "2020050607080900\x00")
	for i := 847; i < 881; i++ {
		pvd[i] = '0'
	}
	pvd[881] = 1
	term := b.img[17*sectorSize : 18*sectorSize]
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1

	img := b.img[:b.cursor]
	return img, b.layout
}

// records builds the directory records of d (with placeholder extents when
// sizing).
func (b *tBuilder) records(d *tDir, sizing bool) [][]byte {
	self, parent := d, d.parent
	if parent == nil {
		parent = d
	}
	var rootSU []byte
	if d.parent == nil {
		rootSU = b.im.rootSU
	}
	recs := [][]byte{
		record([]byte{0}, uint32(self.extent), uint32(self.size), flagDirectory, 0, 0, 0, rootSU),
		record([]byte{1}, uint32(parent.extent), uint32(parent.size), flagDirectory, 0, 0, 0, nil),
	}
	ci := 0
	for _, f := range d.files {
		if f.dir {
			c := d.children[ci]
			ci++
			recs = append(recs, record([]byte(f.name), uint32(c.extent), uint32(c.size), flagDirectory|f.flags, 0, 0, 0, f.su))
			continue
		}
		name := []byte(f.name + ";1")
		l := b.layout[d.path+f.name]
		if sizing || len(l.extents) == 0 {
			n := len(f.sections) + 1
			if f.dropLast {
				n--
			}
			for i := 0; i < n; i++ {
				recs = append(recs, record(name, 0, 0, 0, 0, 0, 0, f.su))
			}
			continue
		}
		for i, e := range l.extents {
			if f.dropLast && i == len(l.extents)-1 {
				break
			}
			flags := f.flags
			if i < len(l.extents)-1 {
				flags |= flagMultiExtent
			}
			recs = append(recs, record(name, uint32(e.Block-int64(f.xar)), uint32(e.Length), flags, f.xar, f.unit, f.gap, f.su))
		}
	}
	return recs
}

func (b *tBuilder) placeFile(d *tDir, f *tFile) {
	if f.dir {
		return
	}
	key := d.path + f.name
	switch {
	case len(f.data) == 0 && f.atZero:
		b.layout[key] = tLayout{extents: []Extent{{Block: 0}}}
		return
	case len(f.data) == 0 && f.beyond:
		b.layout[key] = tLayout{extents: []Extent{{Block: 1 << 30}}}
		return
	}
	var ext []Extent
	data := f.data
	if f.xar > 0 {
		b.alloc(int64(f.xar) * b.lbs) // garbage XAR blocks precede the data
	}
	for i := 0; i <= len(f.sections); i++ {
		chunk := data
		if i < len(f.sections) {
			chunk = data[:f.sections[i]]
		}
		data = data[len(chunk):]
		blk := b.cursor / b.lbs
		if f.unit > 0 {
			// Interleaved: units of f.unit blocks, gaps of f.gap blocks.
			u := int64(f.unit) * b.lbs
			for off := int64(0); off < int64(len(chunk)); off += u {
				end := min(off+u, int64(len(chunk)))
				at := b.alloc(u)
				copy(b.img[at*b.lbs:], chunk[off:end])
				if end < int64(len(chunk)) {
					b.alloc(int64(f.gap) * b.lbs)
				}
			}
		} else {
			at := b.alloc(int64(len(chunk)))
			copy(b.img[at*b.lbs:], chunk)
		}
		ext = append(ext, Extent{Block: blk, Length: int64(len(chunk)), Unit: f.unit, Gap: f.gap})
		if i < len(f.sections) {
			b.alloc(b.lbs) // a hole between sections
		}
	}
	b.layout[key] = tLayout{extents: ext}
}
