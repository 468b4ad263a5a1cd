package fuse

import (
	"sync"
	"sync/atomic"
)

// idKey is what identifies a file on the medium, as far as the mount can
// tell from a directory listing.
//
// On FAT it is the place of the file's directory entry (fat.Sys.Ino, the
// entry's byte offset on the volume / 32) and the file type: a place holds
// one entry at a time, and the mount is the only writer, so it sees every
// change of what a place holds (unlink, rename).
//
// On ISO 9660 it is iso9660.Sys.Ino (the Rock Ridge PX serial number, else
// the directory record's byte position), the type, the first extent and the
// size. Genuine hard links (the same serial on several records, as mkisofs
// and xorriso write them) agree on all four and so share one inode; a
// medium that repeats serial numbers for different files gets distinct
// inodes for them.
type idKey struct {
	natural uint64 // the number the medium suggests
	typ     uint32 // S_IFMT bits
	extent  int64  // ISO: first logical block of the data (-1 if none)
	size    int64  // ISO: data length; device nodes: the device number
	link    string // ISO: a symbolic link's target
	path    string // file systems that suggest no number: the path
}

// ident is the identity of one live file of the mount: its inode number
// and generation, fixed for as long as the kernel knows the inode, and the
// key by which the medium currently names it.
type ident struct {
	ino   uint64
	gen   uint64
	key   idKey
	keyed bool  // key is in inoTable.byKey (the file is still in the tree)
	owner *node // the node created for it; its OnForget releases the ident

	removed atomic.Bool // unlinked, or replaced by a rename: link count 0
}

// synthBase is where inode numbers that the medium cannot provide begin:
// above any FAT entry position (a 2 TiB volume has 2^36 entry places),
// ISO record position (2^43) or PX serial (2^32).
const synthBase = 1 << 56

// inoTable hands out inode numbers. A file gets the number its medium
// suggests (idKey.natural) unless that number is taken by another live
// file (or is 0, 1 or ^0, which FUSE reserves), in which case it gets the
// next free number from synthBase up. Every ident also gets a generation
// of its own, so that go-fuse, which merges inodes whose (number,
// generation, type) agree, never mistakes one file for another even
// where a number repeats.
//
// Numbers stay fixed while the kernel knows the inode: a FAT file that is
// renamed keeps its number (its entry moves, so the table re-keys its
// ident), and a new file in the place it left gets a new number while the
// old one lives. When the kernel forgets an inode (on memory pressure, or
// after the last close of an unlinked file) its ident is released, and
// the next lookup gives the file its natural number again if it is free.
type inoTable struct {
	mu      sync.Mutex
	byKey   map[idKey]*ident
	byIno   map[uint64]*ident
	next    uint64 // next synthetic number
	nextGen uint64
}

func newInoTable() *inoTable {
	return &inoTable{byKey: map[idKey]*ident{}, byIno: map[uint64]*ident{}, next: synthBase, nextGen: 1}
}

// reservedIno reports numbers no file may have: 0 means "choose one" to
// go-fuse, 1 is the FUSE root's node ID (go-fuse gives the root its own
// number), ^0 is go-fuse's poll hack.
func reservedIno(ino uint64) bool { return ino == 0 || ino == 1 || ino == ^uint64(0) }

// get returns the ident of the file with key k, making one if the file has
// none yet.
func (t *inoTable) get(k idKey) *ident {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id := t.byKey[k]; id != nil {
		return id
	}
	return t.addLocked(k, k.natural)
}

// addLocked makes an ident for k with inode number want, or the next free
// synthetic number if want is taken or reserved.
func (t *inoTable) addLocked(k idKey, want uint64) *ident {
	ino := want
	if reservedIno(ino) || t.byIno[ino] != nil {
		for t.byIno[t.next] != nil {
			t.next++
		}
		ino = t.next
		t.next++
	}
	id := &ident{ino: ino, gen: t.nextGen, key: k, keyed: true}
	t.nextGen++
	t.byKey[k] = id
	t.byIno[ino] = id
	return id
}

// root registers the root directory, whose inode number is the one the
// medium gives it (FAT: 1).
func (t *inoTable) root(k idKey) *ident {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k.natural == 0 || k.natural == ^uint64(0) {
		k.natural = 1
	}
	id := &ident{ino: k.natural, gen: 0, key: k, keyed: true}
	t.byKey[k] = id
	t.byIno[id.ino] = id
	return id
}

// adopt records n as the node that owns id, unless it has an owner.
func (t *inoTable) adopt(id *ident, n *node) {
	t.mu.Lock()
	if id.owner == nil {
		id.owner = n
	}
	t.mu.Unlock()
}

// moved re-keys id: its file's entry moved (a FAT rename). Whatever else
// the new key named is forgotten; its node was replaced.
func (t *inoTable) moved(id *ident, k idKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id.keyed && t.byKey[id.key] == id {
		delete(t.byKey, id.key)
	}
	if old := t.byKey[k]; old != nil && old != id {
		old.keyed = false
		old.removed.Store(true)
	}
	id.key, id.keyed = k, true
	t.byKey[k] = id
}

// unkey forgets that k names a file (it was removed) and marks its ident,
// if any, removed. The ident keeps its number while its node lives.
func (t *inoTable) unkey(k idKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id := t.byKey[k]; id != nil {
		id.keyed = false
		id.removed.Store(true)
		delete(t.byKey, k)
	}
}

// lookup returns the ident k names, or nil.
func (t *inoTable) lookup(k idKey) *ident {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byKey[k]
}

// release drops id when its owner n is forgotten by the kernel.
func (t *inoTable) release(id *ident, n *node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id.owner != n {
		return
	}
	id.owner = nil
	if id.keyed && t.byKey[id.key] == id {
		delete(t.byKey, id.key)
	}
	id.keyed = false
	if t.byIno[id.ino] == id {
		delete(t.byIno, id.ino)
	}
}

// size reports how many idents are held (for tests).
func (t *inoTable) size() (keys, inos int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey), len(t.byIno)
}
