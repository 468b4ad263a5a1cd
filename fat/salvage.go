package fat

import (
	"github.com/mediafs/mediafs/device"
)

// DirDamageError reports a directory that could be read only in part (see
// device.DirDamageError); Rest is set when its cluster chain could not be
// followed past what was read.
type DirDamageError = device.DirDamageError

// dirReader parses a directory sector by sector, going past sectors that
// cannot be read. An unreadable sector breaks any long-name run that
// crosses it: the parser starts afresh after it, so that a run's first
// slots (before the sector) never join a short entry after it, and a run's
// last slots (after it) are ignored, leaving the short name shown, as for
// any broken run (fatgen103 "FAT Long Directory Entries").
type dirReader struct {
	v      *FS
	p      dirParser
	list   []*node
	pos    int64 // bytes of the directory passed
	damage *DirDamageError
	isBad  func(sec int64) bool // optional: sectors known to be bad are not read
}

// sector parses one sector of slots entries; it is a forEachDirSector
// callback.
func (r *dirReader) sector(sec int64, slots int) (bool, error) {
	n := int64(slots) * dirEntrySize
	if r.isBad != nil && r.isBad(sec) {
		r.bad(&device.SectorError{Op: "read", Sector: sec, Err: device.ErrBadSector}, sec, n)
		return false, nil
	}
	b, err := r.v.cache.Get(sec)
	if err != nil {
		if !device.IsMediaError(err) {
			return true, err
		}
		r.bad(err, sec, n)
		return false, nil
	}
	defer r.v.cache.Release(b)
	base := r.v.g.sectorOffset(sec)
	for i := range slots {
		nd, end := r.p.feed(b.Data[i*dirEntrySize:(i+1)*dirEntrySize], base+int64(i*dirEntrySize))
		if nd != nil {
			r.list = append(r.list, nd)
		}
		if end {
			return true, nil
		}
	}
	r.pos += n
	return false, nil
}

// bad records that sector sec, holding n bytes of the directory, could not
// be read.
func (r *dirReader) bad(err error, sec, n int64) {
	if r.damage == nil {
		r.damage = &DirDamageError{}
	}
	r.damage.Add(err, sec, r.pos, n)
	r.pos += n
	r.p.reset()
}

// finish returns the listing and what went wrong: nil, a *DirDamageError,
// or (when nothing was damaged) the error that ended the walk.
func (r *dirReader) finish(err error) ([]*node, error) {
	if err != nil {
		if r.damage == nil && !device.IsMediaError(err) {
			return r.list, err
		}
		if r.damage == nil {
			r.damage = &DirDamageError{}
		}
		r.damage.Rest = err
	}
	if r.damage != nil {
		return r.list, r.damage
	}
	return r.list, nil
}
