package fat

import (
	"container/list"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// parsedDir is a directory read and parsed once, with its names indexed:
// path lookups and listings of large trees must not re-read and re-parse
// every directory on the way for every file (extracting 20,000 files would
// otherwise parse each directory once per file in it).
type parsedDir struct {
	list  []*node            // in on-disk order
	exact map[string]*node   // the first node of each exact name
	fold  map[string][]*node // nodes by case-folded long and short name, in on-disk order
}

func newParsedDir(l []*node) *parsedDir {
	p := &parsedDir{list: l, exact: make(map[string]*node, len(l)), fold: make(map[string][]*node, len(l))}
	for _, n := range l {
		p.index(n)
	}
	return p
}

// lookup finds elem as Windows does: the exact name first, then the first
// entry whose long or short name matches it case-insensitively.
func (p *parsedDir) lookup(elem string) *node {
	if n, ok := p.exact[elem]; ok {
		return n
	}
	var best *node
	for _, n := range p.fold[foldKey(elem)] {
		if strings.EqualFold(n.name, elem) || strings.EqualFold(n.short, elem) {
			if best == nil || n.off < best.off {
				best = n
			}
		}
	}
	return best
}

// foldKey maps every string that strings.EqualFold equates to the same key:
// each rune becomes the smallest rune of its case-folding orbit.
func foldKey(s string) string {
	lower := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return foldKeyRunes(s)
		}
		lower = lower || 'a' <= c && c <= 'z'
	}
	// ASCII: a letter's orbit is itself and its other case (and, for k
	// and s, a non-ASCII sign), whose smallest member is the upper case.
	if !lower {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// foldKeyRunes is foldKey for any string, a rune at a time.
func foldKeyRunes(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// dirCache keeps parsed directories, least recently used first out, bounded
// by the number of entries held. A directory that failed to read (a bad
// sector) is kept apart, in damaged, for lookups only (lookupDir): looking
// up each readable entry must not ask the medium for the bad sector again,
// but a listing, and every writer, reads it afresh (dir), since the medium
// may deliver the sector on a later try. A writer must call forget for
// every directory it changes.
type dirCache struct {
	mu      sync.Mutex
	m       map[uint32]*list.Element
	lru     list.List // of *dirCacheItem, front = most recent
	entries int
	max     int
	damaged map[uint32]damagedDir
}

// damagedDir is the readable part of a damaged directory and its damage.
type damagedDir struct {
	dir *parsedDir
	err error
}

// maxDamagedDirs bounds the damaged directories kept.
const maxDamagedDirs = 64

type dirCacheItem struct {
	key uint32
	dir *parsedDir
}

const dirCacheMaxEntries = 65536 // about 16 MiB of names at most

func (c *dirCache) get(key uint32) *parsedDir {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*dirCacheItem).dir
	}
	return nil
}

func (c *dirCache) put(key uint32, d *parsedDir) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[uint32]*list.Element)
		c.max = dirCacheMaxEntries
	}
	delete(c.damaged, key)
	if len(d.list) > c.max {
		return
	}
	if e, ok := c.m[key]; ok {
		c.entries -= len(e.Value.(*dirCacheItem).dir.list)
		c.lru.Remove(e)
	}
	c.m[key] = c.lru.PushFront(&dirCacheItem{key: key, dir: d})
	c.entries += len(d.list)
	for c.entries > c.max {
		e := c.lru.Back()
		it := e.Value.(*dirCacheItem)
		c.lru.Remove(e)
		delete(c.m, it.key)
		c.entries -= len(it.dir.list)
	}
}

// forget drops a directory (after a change to it).
func (c *dirCache) forget(key uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.damaged, key)
	if e, ok := c.m[key]; ok {
		c.entries -= len(e.Value.(*dirCacheItem).dir.list)
		c.lru.Remove(e)
		delete(c.m, key)
	}
}

// dir returns directory d parsed, from the cache when it can. When the
// directory could be read only in part it returns what it read together
// with the error (a *DirDamageError where sectors were unreadable).
func (v *FS) dir(d *node) (*parsedDir, error) {
	key := v.dirKey(d)
	if p := v.dirs.get(key); p != nil {
		return p, nil
	}
	l, err := v.readDir(d)
	if err != nil {
		// A damaged directory's parse holds only the entries of its
		// readable sectors: callers that can use part of a directory (a
		// listing, a lookup) take it, the others fail on err. Kept for
		// lookups only.
		p := newParsedDir(l)
		v.dirs.putDamaged(key, p, err)
		return p, err
	}
	p := newParsedDir(l)
	v.dirs.put(key, p)
	return p, nil
}

// lookupDir is dir for looking a name up: a damaged directory's readable
// part, as last read, serves without reading the medium again.
func (v *FS) lookupDir(d *node) (*parsedDir, error) {
	if dd, ok := v.dirs.getDamaged(v.dirKey(d)); ok {
		return dd.dir, dd.err
	}
	return v.dir(d)
}

func (c *dirCache) putDamaged(key uint32, p *parsedDir, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.damaged == nil || len(c.damaged) >= maxDamagedDirs {
		c.damaged = make(map[uint32]damagedDir)
	}
	c.damaged[key] = damagedDir{p, err}
}

func (c *dirCache) getDamaged(key uint32) (damagedDir, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dd, ok := c.damaged[key]
	return dd, ok
}

// setEntry records that the short entry at byte off of directory key now
// reads ent, its name unchanged (a new size, first cluster, time or
// attribute), so that a write does not cost a re-parse of the whole
// directory. The node is replaced, not changed, since readers may hold the
// old one. If err is set or the entry is not found, the directory is
// dropped instead and parsed anew on the next look.
func (c *dirCache) setEntry(key uint32, off int64, ent dirEntry, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return
	}
	d := e.Value.(*dirCacheItem).dir
	if err == nil {
		for i, n := range d.list {
			if n.off != off {
				continue
			}
			nn := *n
			nn.ent = ent
			d.list[i] = &nn
			if d.exact[n.name] == n {
				d.exact[n.name] = &nn
			}
			for _, k := range []string{foldKey(n.name), foldKey(n.short)} {
				for j, m := range d.fold[k] {
					if m == n {
						d.fold[k][j] = &nn
					}
				}
			}
			return
		}
	}
	c.entries -= len(d.list)
	c.lru.Remove(e)
	delete(c.m, key)
}

// addNode records a new entry in directory key's cached parse, in on-disk
// order. The list is copied, not extended in place, since readers may hold
// the old one.
func (c *dirCache) addNode(key uint32, n *node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return
	}
	d := e.Value.(*dirCacheItem).dir
	i := sort.Search(len(d.list), func(i int) bool { return d.list[i].off > n.off })
	l := make([]*node, 0, len(d.list)+1)
	l = append(append(append(l, d.list[:i]...), n), d.list[i:]...)
	d.list = l
	d.index(n)
	c.entries++
}

// index adds n to the name indexes: by its exact name (the first of a
// repeated name wins) and by the case-folded long and short names.
func (p *parsedDir) index(n *node) {
	if _, ok := p.exact[n.name]; !ok {
		p.exact[n.name] = n
	}
	k := foldKey(n.name)
	p.fold[k] = append(p.fold[k], n)
	if ks := foldKey(n.short); ks != k {
		p.fold[ks] = append(p.fold[ks], n)
	}
}
