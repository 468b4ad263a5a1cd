package fuse

import (
	"syscall"
	"testing"
)

func TestInoTable(t *testing.T) {
	tab := newInoTable()
	file := func(slot uint64) idKey { return idKey{natural: slot, typ: syscall.S_IFREG, extent: -1} }
	own := func(id *ident) *node {
		n := &node{id: id}
		tab.adopt(id, n)
		return n
	}

	root := tab.root(idKey{natural: 1, typ: syscall.S_IFDIR, extent: -1})
	if root.ino != 1 {
		t.Errorf("root ino %d, want 1", root.ino)
	}
	a := tab.get(file(100))
	na := own(a)
	if a.ino != 100 {
		t.Errorf("a: ino %d, want its natural 100", a.ino)
	}
	if again := tab.get(file(100)); again != a {
		t.Errorf("a second lookup made a second ident")
	}
	// A directory in the same place is another file.
	if d := tab.get(idKey{natural: 100, typ: syscall.S_IFDIR, extent: -1}); d.ino == a.ino || d.gen == a.gen {
		t.Errorf("two files share inode %d gen %d", d.ino, d.gen)
	} else {
		tab.release(d, own(d))
	}

	// a moves to place 200 and keeps its number; a new file in place 100
	// gets another number while a lives.
	tab.moved(a, file(200))
	if got := tab.get(file(200)); got != a || got.ino != 100 {
		t.Errorf("after the move, place 200 gives ino %d, want a's 100", got.ino)
	}
	b := tab.get(file(100))
	nb := own(b)
	if b.ino == 100 || b.ino < synthBase {
		t.Errorf("new file in a's old place: ino %d, want a synthetic one", b.ino)
	}
	// A file in a free place gets its own number.
	c := tab.get(file(300))
	own(c)
	if c.ino != 300 {
		t.Errorf("c: ino %d, want 300", c.ino)
	}

	// Unlinking b marks it removed; its number lives until it is forgotten.
	tab.unkey(file(100))
	if !b.removed.Load() {
		t.Errorf("unkey did not mark b removed")
	}
	if tab.lookup(file(100)) != nil {
		t.Errorf("place 100 still names b")
	}
	// Forgetting a (by a node that is not its owner) does nothing.
	tab.release(a, &node{})
	if tab.get(file(200)) != a {
		t.Errorf("a was released by a stranger")
	}
	tab.release(a, na)
	tab.release(b, nb)
	// Now place 100's natural number is free again.
	d := tab.get(file(100))
	if d.ino != 100 {
		t.Errorf("after a is forgotten, place 100 gets ino %d, want 100", d.ino)
	}
	// Reserved numbers are never handed out.
	for _, r := range []uint64{0, 1, ^uint64(0)} {
		if id := tab.get(file(r)); id.ino == r {
			t.Errorf("reserved number %d handed out", r)
		}
	}
	// Replacing by a rename: the file at the target is marked removed.
	e := tab.get(file(400))
	own(e)
	tab.moved(d, file(400))
	if !e.removed.Load() || tab.lookup(file(400)) != d {
		t.Errorf("rename over e: e removed %v, place 400 names %v", e.removed.Load(), tab.lookup(file(400)))
	}
	if keys, inos := tab.size(); keys > inos {
		t.Errorf("%d keys for %d numbers", keys, inos)
	}
}
