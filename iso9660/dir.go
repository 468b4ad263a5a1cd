package iso9660

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/mediafs/mediafs/device"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// node is one file or directory of the tree being shown.
type node struct {
	name     string
	dir      bool
	size     int64 // readable bytes (zisofs: uncompressed size)
	rawSize  int64 // bytes in the sections
	sections []Extent
	date     time.Time // directory record date
	flags    uint8
	recOff   int64 // byte position of the (first) directory record

	rr           bool
	hasPX        bool
	mode         uint32 // PX st_mode
	nlink        uint32
	uid, gid     uint32
	ino          uint64
	hasIno       bool
	hasPN        bool
	major, minor uint32
	isLink       bool
	link         string
	mtime        time.Time // TF modify
	atime        time.Time
	ctime        time.Time
	zf           *zfEntry

	err error // damage found while listing (e.g. a missing final section)
}

// applyRR copies the Rock Ridge attributes gathered in st.
func (n *node) applyRR(st *rrState) {
	if st == nil {
		return
	}
	n.rr = true
	if st.hasPX {
		n.hasPX = true
		n.mode, n.nlink, n.uid, n.gid = st.px.Mode, st.px.Nlink, st.px.UID, st.px.GID
		n.ino, n.hasIno = st.px.Ino, st.px.HasIno
	}
	if st.hasPN {
		n.hasPN = true
		n.major, n.minor = devNumber(st.pnHigh, st.pnLow)
	}
	if st.isLink && !n.dir {
		n.isLink = true
		n.link = st.link.String()
	}
	if st.hasTF {
		n.mtime, n.atime, n.ctime = st.tf.Modify, st.tf.Access, st.tf.Attributes
	}
	if st.hasZF && !n.dir {
		z := st.zf
		n.zf = &z
	}
}

// finish computes the sizes once all sections are known.
func (n *node) finish() {
	n.rawSize = 0
	for _, s := range n.sections {
		n.rawSize += s.Length
	}
	n.size = n.rawSize
	if n.zf != nil {
		n.size = n.zf.Size
	}
	if n.isLink {
		n.size = int64(len(n.link))
	}
}

// alloc is the allocation (R-ISO-3): the sections' lengths with the last
// one rounded up to the logical block.
func (n *node) alloc(g geometry) int64 {
	var a int64
	for i, s := range n.sections {
		if i == len(n.sections)-1 {
			a += g.roundUpToBlock(s.Length)
		} else {
			a += s.Length
		}
	}
	return a
}

func (n *node) mtimeOrDate() time.Time {
	if !n.mtime.IsZero() {
		return n.mtime
	}
	return n.date
}

// fileMode is the io/fs mode: RR PX where present, else 0555 directories
// and 0444 files.
func (n *node) fileMode() fs.FileMode {
	if !n.hasPX {
		switch {
		case n.dir:
			return fs.ModeDir | 0o555
		case n.isLink:
			return fs.ModeSymlink | 0o777
		}
		return 0o444
	}
	m := fs.FileMode(n.mode & 0o777)
	if n.mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n.mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n.mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch {
	case n.dir:
		return m | fs.ModeDir
	case n.isLink:
		return m | fs.ModeSymlink
	}
	switch n.mode & 0o170000 {
	case 0o120000:
		return m | fs.ModeSymlink
	case 0o060000:
		return m | fs.ModeDevice
	case 0o020000:
		return m | fs.ModeDevice | fs.ModeCharDevice
	case 0o010000:
		return m | fs.ModeNamedPipe
	case 0o140000:
		return m | fs.ModeSocket
	}
	return m
}

// scanDir calls fn for each directory record of the directory whose extent
// starts at logical block ext and holds size bytes. Records are read in
// absolute 2048-byte sectors (R-ISO-7): a zero length byte moves to the next
// sector, and a record may not cross a sector or the end of the directory.
// The directory may start mid-sector when the block size is below 2048. A
// damaged record ends the scan with a *CorruptError naming its offset, and
// so does a sector that cannot be read.
func (f *FS) scanDir(ext, size int64, fn func(rec dirRecord, off int64) error) error {
	return f.scanDirTolerant(ext, size, fn, nil)
}

// scanDirTolerant is scanDir, except that when bad is not nil a sector that
// fails with a media error does not end the scan: bad is told of the
// directory's bytes [from, to) that the sector held, and the scan goes on
// with the next sector. That is safe because a directory record never
// crosses a logical sector (ECMA-119 6.8.1.1), so the next sector starts
// with a whole record (or with zeros).
func (f *FS) scanDirTolerant(ext, size int64, fn func(rec dirRecord, off int64) error, bad func(from, to int64, err error)) error {
	start := f.g.blockToByte(ext)
	end := start + size
	if ext < 0 || size < 0 || end > f.dev.Size() {
		return corrupt(start, "directory extent [%d, %d) lies beyond the end of the %d-byte medium", start, end, f.dev.Size())
	}
	pos := start
	for pos < end {
		sec := sectorFloor(pos)
		stop := min(sec+sectorSize, end)
		b, err := f.c.Get(byteToSector(pos))
		if err != nil {
			if bad == nil || !device.IsMediaError(err) {
				return err
			}
			bad(pos, stop, err)
			pos = stop
			continue
		}
		err = func() error {
			defer f.c.Release(b)
			for pos < stop {
				if b.Data[pos-sec] == 0 {
					pos = sec + sectorSize // SUSP/ECMA-119 6.8.1.1: the rest of the sector is unused
					return nil
				}
				rec, err := decodeDirRecord(b.Data[pos-sec : stop-sec])
				if err != nil {
					return corrupt(pos, "%v", err)
				}
				if err := fn(rec, pos); err != nil {
					return err
				}
				pos += int64(rec.Len)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// dirListing is a directory's parsed content.
type dirListing struct {
	nodes   []*node // sorted by name
	err     error   // damage that ended the listing early, or was found in it
	damaged bool    // some sectors could not be read: nodes holds the rest
}

const (
	maxSections    = 4096    // bound on the sections of one multi-extent file
	maxCachedNodes = 200_000 // bound on the nodes kept in parsed directories
)

// list returns the parsed content of directory d, from the listing cache
// when possible. A listing that met unreadable sectors is kept too, so that
// looking up each of its readable entries does not ask the medium for the
// bad sector again (with retries or a drive's own, each ask may take
// seconds); fresh (a caller listing the directory itself) reads such a
// listing again, since the medium may deliver the sector on a later try.
func (f *FS) list(d *node, fresh bool) *dirListing {
	key := f.g.blockToByte(d.sections[0].Block)
	f.mu.Lock()
	l, ok := f.dirs[key]
	f.mu.Unlock()
	if ok && !(fresh && l.unread()) {
		return l
	}
	l = f.readListing(d)
	f.mu.Lock()
	if old, ok := f.dirs[key]; ok {
		f.dirNodes -= len(old.nodes)
	}
	if f.dirNodes+len(l.nodes) > maxCachedNodes {
		clear(f.dirs)
		f.dirNodes = 0
	}
	f.dirs[key] = l
	f.dirNodes += len(l.nodes)
	f.mu.Unlock()
	return l
}

// unread says whether the listing misses what an unreadable sector held.
func (l *dirListing) unread() bool {
	return l.damaged || (l.err != nil && device.IsMediaError(l.err))
}

func isDotRecord(name []byte) bool { return len(name) == 1 && (name[0] == 0 || name[0] == 1) }

// readListing parses directory d: merges multi-extent sections (ECMA-119
// 6.5.1, R-ISO-8), decodes names in the namespace in use, applies Rock Ridge
// and hides relocation entries.
func (f *FS) readListing(d *node) *dirListing {
	l := &dirListing{}
	isRoot := d == f.root
	var pending *node
	var pendingName []byte
	var pendingOff int64
	var damage *DirDamageError
	dropPending := func() {
		if pending != nil {
			if damage != nil {
				// Its later sections may have been in the unreadable sector.
				pending.err = damage
			} else {
				pending.err = corrupt(pendingOff, "multi-extent file %q has no final section", pending.name)
			}
			pending.finish()
			l.nodes = append(l.nodes, pending)
			if l.err == nil && damage == nil {
				l.err = pending.err
			}
			pending = nil
		}
	}
	records := 0
	start := f.g.blockToByte(d.sections[0].Block)
	bad := func(from, to int64, err error) {
		if damage == nil {
			damage = &DirDamageError{}
		}
		damage.Add(err, byteToSector(from), from-start, to-from)
		dropPending()
	}
	err := f.scanDirTolerant(d.sections[0].Block, d.size, func(rec dirRecord, off int64) error {
		records++
		if records == 1 && damage == nil && (!isDotRecord(rec.Name) || rec.Name[0] != 0) && l.err == nil {
			l.err = corrupt(off, "directory does not start with its \".\" record")
		}
		if isDotRecord(rec.Name) {
			return nil
		}
		if pending != nil {
			if bytes.Equal(rec.Name, pendingName) {
				if len(pending.sections) >= maxSections {
					return corrupt(off, "multi-extent file %q has more than %d sections", pending.name, maxSections)
				}
				pending.sections = append(pending.sections, sectionOf(rec))
				if rec.Flags&flagMultiExtent == 0 {
					pending.finish()
					l.nodes = append(l.nodes, pending)
					pending = nil
				}
				return nil
			}
			dropPending()
		}
		n, rrErr := f.newNode(rec, off, isRoot)
		if rrErr != nil && l.err == nil {
			l.err = rrErr
		}
		if n == nil {
			return nil
		}
		if rec.Flags&flagMultiExtent != 0 && !n.dir {
			pending, pendingName, pendingOff = n, bytes.Clone(rec.Name), off
			return nil
		}
		n.finish()
		l.nodes = append(l.nodes, n)
		return nil
	}, bad)
	dropPending()
	switch {
	case err != nil:
		l.err = err
	case damage != nil:
		l.err = damage
	case records == 0:
		l.err = corrupt(start, "directory has no \".\" record")
	}
	l.damaged = damage != nil
	slices.SortStableFunc(l.nodes, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	f.uniqueNames(l)
	return l
}

// uniqueNames renames the later of two entries with the same name (a
// damaged or hostile directory, or names that became equal when "/" was
// neutralised) to "name~2", "name~3", ... with a warning, so that every
// entry stays reachable by its path instead of one hiding the other.
func (f *FS) uniqueNames(l *dirListing) {
	dup := false
	for i := 1; i < len(l.nodes); i++ {
		if l.nodes[i].name == l.nodes[i-1].name {
			dup = true
			break
		}
	}
	if !dup {
		return
	}
	taken := make(map[string]bool, len(l.nodes))
	for _, n := range l.nodes {
		taken[n.name] = true
	}
	seen := make(map[string]bool, len(l.nodes))
	for _, n := range l.nodes {
		if !seen[n.name] {
			seen[n.name] = true
			continue
		}
		for k := 2; ; k++ {
			alt := fmt.Sprintf("%s~%d", n.name, k)
			if !taken[alt] {
				f.warn("the directory record at byte %d repeats the name %q; shown as %q", n.recOff, n.name, alt)
				n.name = alt
				taken[alt], seen[alt] = true, true
				break
			}
		}
	}
	slices.SortStableFunc(l.nodes, func(a, b *node) int { return strings.Compare(a.name, b.name) })
}

func sectionOf(rec dirRecord) Extent {
	return Extent{Block: int64(rec.Extent) + int64(rec.XARLen), Length: int64(rec.DataLen), Unit: int(rec.UnitSize), Gap: int(rec.Gap)}
}

// newNode builds the node of one directory record, or returns nil for
// records that are not shown (Rock Ridge RE entries and rr_moved). A
// Rock Ridge continuation problem that the listing must report (a loop, an
// overrun) is returned as well.
func (f *FS) newNode(rec dirRecord, off int64, inRoot bool) (*node, error) {
	var st *rrState
	if f.ns == "rr" {
		st = newRRState()
		f.readSystemUse(rec.SystemUse, f.lenSk, off, st)
		if st.problem != "" {
			f.warn("Rock Ridge entries of the record at byte %d: %s", off, st.problem)
		}
		if st.relocatedDir {
			return nil, st.fatal
		}
	}
	n := &node{
		dir:      rec.Flags&flagDirectory != 0,
		sections: []Extent{sectionOf(rec)},
		date:     rec.Date,
		flags:    rec.Flags,
		recOff:   off,
	}
	switch {
	case st != nil && st.hasName:
		n.name = st.name.String()
	case f.ns == "joliet":
		n.name = stripVersion(ucs2String(rec.Name), false)
	default:
		n.name = stripVersion(latin1(rec.Name), true)
	}
	n.name = f.sanitizeName(n.name, off)
	if st != nil && inRoot && n.dir && strings.EqualFold(n.name, "rr_moved") {
		return nil, st.fatal
	}
	n.applyRR(st)
	if st == nil {
		return n, nil
	}
	if st.cl >= 0 {
		f.followCL(n, st.cl)
	}
	return n, st.fatal
}

// followCL makes n the relocated directory that a Rock Ridge CL entry
// points at (RRIP 1.12 4.1.5.1): its extent and size come from the "."
// record at that block, and so do its attributes; the name stays the one
// of the CL record.
func (f *FS) followCL(n *node, cl int64) {
	n.dir, n.isLink, n.zf = true, false, nil
	n.sections = []Extent{{Block: cl}}
	rec, st, err := f.dotRecord(cl, f.lenSk, true)
	if err != nil {
		n.err = err
		return
	}
	n.sections = []Extent{sectionOf(rec)}
	n.date = rec.Date
	st.hasName, st.isLink = false, false
	n.applyRR(st)
}

// dotRecord reads the "." record that starts the directory at logical
// block ext, and its Rock Ridge entries when rr is set (skipping skip
// bytes of its system use area). The record's slices are not kept.
func (f *FS) dotRecord(ext int64, skip int, rr bool) (dirRecord, *rrState, error) {
	errStop := errors.New("stop")
	var dot dirRecord
	var st *rrState
	start := f.g.blockToByte(ext)
	err := f.scanDir(ext, min(sectorSize-start%sectorSize, max(f.dev.Size()-start, 0)), func(rec dirRecord, off int64) error {
		if !isDotRecord(rec.Name) || rec.Name[0] != 0 {
			return corrupt(off, "directory does not start with its \".\" record")
		}
		dot = rec
		if rr {
			st = newRRState()
			f.readSystemUse(rec.SystemUse, skip, off, st)
		}
		dot.Name, dot.SystemUse = nil, nil
		return errStop
	})
	if err == nil {
		err = corrupt(start, "directory has no \".\" record")
	}
	if err != errStop {
		return dot, nil, err
	}
	return dot, st, nil
}

// latin1 decodes an ISO 9660 identifier: UTF-8 if it is valid UTF-8, else
// ISO 8859-1.
func latin1(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// stripVersion removes the ";version" suffix (ECMA-119 7.5.1) and, for ISO
// names, a trailing "." left by a missing extension.
func stripVersion(name string, iso bool) string {
	if i := strings.LastIndexByte(name, ';'); i >= 0 {
		name = name[:i]
	}
	if iso && len(name) > 1 && strings.HasSuffix(name, ".") {
		name = name[:len(name)-1]
	}
	return name
}

// sanitizeName makes a name usable in an io/fs path: a "/" or NUL becomes
// "_", and "", "." and ".." get a leading "_".
func (f *FS) sanitizeName(name string, off int64) string {
	clean := strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, name)
	if clean == "" || clean == "." || clean == ".." {
		clean = "_" + clean
	}
	if clean != name {
		f.warn("name %q of the record at byte %d shown as %q", name, off, clean)
	}
	return clean
}

// maxLinkHops bounds symbolic link resolution, as Linux's MAXSYMLINKS.
const maxLinkHops = 40

// lookup resolves an io/fs path. Symbolic links in the middle of the path
// are followed within the image; the last element is followed only when
// follow is set. Directory cycles are reported as corruption.
func (f *FS) lookup(op, name string, follow bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	perr := func(err error) error { return &fs.PathError{Op: op, Path: slashPath(name), Err: err} }
	chain := []*node{f.root}
	var todo []string
	if name != "." {
		todo = strings.Split(name, "/")
	}
	hops := 0
	for len(todo) > 0 {
		elem := todo[0]
		todo = todo[1:]
		cur := chain[len(chain)-1]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(chain) > 1 {
				chain = chain[:len(chain)-1]
			}
			continue
		}
		if !cur.dir {
			return nil, perr(ErrNotDir)
		}
		l := f.list(cur, false)
		child := findChild(l.nodes, elem, f.ns != "rr")
		if child == nil {
			if l.err != nil {
				return nil, perr(l.err)
			}
			return nil, perr(fs.ErrNotExist)
		}
		if child.isLink && (len(todo) > 0 || follow) {
			hops++
			if hops > maxLinkHops {
				return nil, perr(ErrLinkLoop)
			}
			target := child.link
			if strings.HasPrefix(target, "/") {
				chain = chain[:1]
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		if child.dir {
			for _, a := range chain {
				if a.sections[0].Block == child.sections[0].Block {
					return nil, perr(corrupt(child.recOff, "directory %q is its own ancestor", child.name))
				}
			}
		}
		chain = append(chain, child)
	}
	return chain[len(chain)-1], nil
}

// Errors of path resolution and of reading a directory as a file, so that
// callers can tell them apart (errors.Is) as the FUSE layer does (ENOTDIR,
// ELOOP, EISDIR).
var (
	// ErrNotDir: a path runs through something that is not a directory.
	ErrNotDir = errors.New("not a directory")
	// ErrLinkLoop: resolving a path met more than 40 symbolic links, as
	// Linux's limit is.
	ErrLinkLoop = errors.New("too many levels of symbolic links")
	// ErrIsDir: a directory was read as a file.
	ErrIsDir = errors.New("is a directory")
)

// findChild finds name in a sorted listing: exactly, then (for ISO and
// Joliet names) case-insensitively.
func findChild(nodes []*node, name string, fold bool) *node {
	i, ok := slices.BinarySearchFunc(nodes, name, func(n *node, s string) int { return strings.Compare(n.name, s) })
	if ok {
		return nodes[i]
	}
	if fold {
		for _, n := range nodes {
			if strings.EqualFold(n.name, name) {
				return n
			}
		}
	}
	return nil
}

// children returns the listing of directory d as seen from the chain of
// ancestors, without entries that would form a cycle.
func (f *FS) children(d *node, name string) ([]*node, error) {
	l := f.list(d, true)
	nodes := l.nodes
	err := l.err
	var kept []*node
	for i, c := range nodes {
		if c.dir && (c.sections[0].Block == d.sections[0].Block || c.sections[0].Block == f.root.sections[0].Block) {
			if kept == nil {
				kept = slices.Clone(nodes[:i])
			}
			if err == nil {
				err = corrupt(c.recOff, "directory %q is its own ancestor", c.name)
			}
			continue
		}
		if kept != nil {
			kept = append(kept, c)
		}
	}
	if kept != nil {
		nodes = kept
	}
	if err != nil {
		err = &fs.PathError{Op: "readdir", Path: slashPath(name), Err: err}
	}
	return nodes, err
}
