package fat

import (
	"errors"
	"slices"

	"github.com/mediafs/mediafs/device"
)

// DirDamageError reports a directory that could be read only in part: some
// of its sectors could not be read, or its cluster chain could not be
// followed to its end. The entries of the sectors that were read are listed
// all the same. It unwraps to the errors behind it, so that a bad sector
// matches device.ErrBadSector.
type DirDamageError struct {
	// Sectors are the unreadable sectors, numbered as the device's errors
	// number them (absolute on the medium the user named).
	Sectors []int64
	// Lost are the byte ranges of the directory (offsets in it) that could
	// not be read.
	Lost []device.Range
	// Err is the first error reading a sector, nil if every sector found
	// was read.
	Err error
	// Rest is set when the directory's cluster chain could not be followed
	// past what was read (a FAT sector that cannot be read): the rest of
	// the directory, and its length, are unknown.
	Rest error
}

func (e *DirDamageError) Error() string {
	var msg string
	if e.Err != nil {
		msg = "directory damaged: " + e.Err.Error()
		if len(e.Sectors) > 1 {
			msg += " (unreadable sectors: " + device.SectorList(e.Sectors) + ")"
		}
		if e.Rest != nil {
			msg += "; the rest of it cannot be found: " + e.Rest.Error()
		}
		return msg
	}
	return "directory damaged: its cluster chain cannot be followed: " + e.Rest.Error()
}

func (e *DirDamageError) Unwrap() []error {
	var out []error
	for _, err := range []error{e.Err, e.Rest} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// LostRanges returns the byte ranges of the directory that could not be
// read, as offsets in the directory.
func (e *DirDamageError) LostRanges() []device.Range { return slices.Clone(e.Lost) }

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
	if r.damage.Err == nil {
		r.damage.Err = err
	}
	var se *device.SectorError
	if errors.As(err, &se) {
		sec = se.Sector
	}
	r.damage.Sectors = append(r.damage.Sectors, sec)
	r.damage.Lost = device.AppendRange(r.damage.Lost, r.pos, n)
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
