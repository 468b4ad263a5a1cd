package mkiso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const maxCEChain = 64

// rebaser converts an image with 2048-byte logical blocks in place.
type rebaser struct {
	img     []byte
	f       uint32 // 2048 / new block size
	bs      uint32
	dirs    map[uint32]bool // directory extents visited (old LBN)
	tables  map[uint32]bool // path tables converted (old LBN)
	ceAreas map[uint64]bool // continuation areas converted (old byte offset)
}

// Rebase converts a 2048-block ISO 9660 image (as written by xorriso or
// genisoimage, with Rock Ridge and Joliet) to a logical block size of 512
// or 1024 by multiplying every logical block number by 2048/blockSize.
// Nothing moves: it patches the block size and volume space size of each
// primary and supplementary volume descriptor, the path-table locations
// and records, every directory record of every tree, and the SUSP CE
// (block scaled, offset renormalised), CL and PL entries. Volume
// descriptors and El Torito keep their 2048-byte sector addresses.
func Rebase(src io.ReaderAt, size int64, blockSize int) ([]byte, error) {
	switch blockSize {
	case 512, 1024, 2048:
	default:
		return nil, fmt.Errorf("mkiso: rebase: block size %d: must be 512, 1024 or 2048", blockSize)
	}
	img := make([]byte, size)
	if n, err := src.ReadAt(img, 0); n != len(img) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("mkiso: rebase: %w", err)
	}
	r := &rebaser{img: img, f: uint32(2048 / blockSize), bs: uint32(blockSize),
		dirs: map[uint32]bool{}, tables: map[uint32]bool{}, ceAreas: map[uint64]bool{}}
	for i := int64(16); ; i++ {
		vd, err := r.slice(uint64(i)*sectorSize, sectorSize)
		if err != nil || string(vd[1:6]) != "CD001" {
			return nil, errors.New("mkiso: rebase: volume descriptor set not terminated")
		}
		if vd[0] == 255 {
			return img, nil
		}
		if vd[0] == 1 || vd[0] == 2 {
			if err := r.descriptor(vd); err != nil {
				return nil, err
			}
		}
	}
}

func (r *rebaser) slice(off, n uint64) ([]byte, error) {
	if off > uint64(len(r.img)) || n > uint64(len(r.img))-off {
		return nil, fmt.Errorf("mkiso: rebase: range %d+%d beyond the image", off, n)
	}
	return r.img[off : off+n], nil
}

// scale multiplies an LBN, failing on overflow.
func (r *rebaser) scale(v uint32) (uint32, error) {
	if uint64(v)*uint64(r.f) > 1<<32-1 {
		return 0, fmt.Errorf("mkiso: rebase: block %d overflows", v)
	}
	return v * r.f, nil
}

func (r *rebaser) scale733(b []byte) (old uint32, err error) {
	old = binary.LittleEndian.Uint32(b)
	v, err := r.scale(old)
	put733(b, v)
	return old, err
}

func (r *rebaser) descriptor(vd []byte) error {
	if bs := binary.LittleEndian.Uint16(vd[128:]); bs != sectorSize {
		return fmt.Errorf("mkiso: rebase: logical block size %d, want 2048", bs)
	}
	put723(vd[128:], uint16(r.bs))
	if _, err := r.scale733(vd[80:]); err != nil {
		return err
	}
	ptSize := binary.LittleEndian.Uint32(vd[132:])
	for i, off := range []int{140, 144, 148, 152} {
		var order binary.ByteOrder = binary.LittleEndian
		if i >= 2 {
			order = binary.BigEndian
		}
		loc := order.Uint32(vd[off:])
		if loc == 0 {
			continue
		}
		nl, err := r.scale(loc)
		if err != nil {
			return err
		}
		order.PutUint32(vd[off:], nl)
		if err := r.pathTable(loc, ptSize, order); err != nil {
			return err
		}
	}
	root := vd[156:190]
	ext, size := binary.LittleEndian.Uint32(root[2:]), binary.LittleEndian.Uint32(root[10:])
	if _, err := r.scale733(root[2:]); err != nil {
		return err
	}
	return r.tree(ext, size)
}

func (r *rebaser) pathTable(loc, size uint32, order binary.ByteOrder) error {
	if r.tables[loc] {
		return nil
	}
	r.tables[loc] = true
	pt, err := r.slice(uint64(loc)*sectorSize, uint64(size))
	if err != nil {
		return err
	}
	for pos := 0; pos+8 <= len(pt); {
		n := int(pt[pos])
		if n == 0 {
			return errors.New("mkiso: rebase: bad path table record")
		}
		v, err := r.scale(order.Uint32(pt[pos+2:]))
		if err != nil {
			return err
		}
		order.PutUint32(pt[pos+2:], v)
		pos += 8 + n + n%2
	}
	return nil
}

type dirRef struct{ ext, size uint32 }

// tree converts the directory hierarchy rooted at the directory with old
// extent ext; SUSP is followed when the root's "." record starts with SP.
func (r *rebaser) tree(ext, size uint32) error {
	queue := []dirRef{{ext, size}}
	susp, skip := false, 0
	first := true // the root's "." record decides on SUSP
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if r.dirs[d.ext] {
			continue
		}
		r.dirs[d.ext] = true
		data, err := r.slice(uint64(d.ext)*sectorSize, uint64(d.size))
		if err != nil {
			return err
		}
		for pos := 0; pos < len(data); {
			n := int(data[pos])
			if n == 0 {
				pos = (pos/sectorSize + 1) * sectorSize
				continue
			}
			if n < 34 || pos+n > len(data) || 33+int(data[pos+32]) > n {
				return fmt.Errorf("mkiso: rebase: bad directory record in extent %d", d.ext)
			}
			rec := data[pos : pos+n]
			pos += n
			idLen := int(rec[32])
			if rec[1] != 0 {
				if int(rec[1])*int(r.f) > 255 {
					return errors.New("mkiso: rebase: extended attribute record too long")
				}
				rec[1] *= byte(r.f)
			}
			old, err := r.scale733(rec[2:])
			if err != nil {
				return err
			}
			id := rec[33 : 33+idLen]
			if rec[25]&2 != 0 && !(idLen == 1 && id[0] <= 1) {
				queue = append(queue, dirRef{old, binary.LittleEndian.Uint32(rec[10:])})
			}
			su := rec[33+idLen+1-idLen%2:]
			if first {
				first = false
				if len(su) >= 7 && su[0] == 'S' && su[1] == 'P' && su[4] == 0xBE && su[5] == 0xEF {
					susp, skip = true, int(su[6])
				}
				if susp {
					if err := r.systemUse(su, 0); err != nil {
						return err
					}
				}
				continue
			}
			if susp && len(su) > skip {
				if err := r.systemUse(su[skip:], 0); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// systemUse converts the CE, CL and PL entries of a system-use area and
// of the continuation areas it leads to.
func (r *rebaser) systemUse(su []byte, depth int) error {
	if depth > maxCEChain {
		return errors.New("mkiso: rebase: continuation chain too long")
	}
	for len(su) >= 4 {
		n := int(su[2])
		if n < 4 || n > len(su) {
			break
		}
		e := su[:n]
		su = su[n:]
		switch string(e[:2]) {
		case "ST":
			return nil
		case "CL", "PL":
			if n >= 12 {
				if _, err := r.scale733(e[4:]); err != nil {
					return err
				}
			}
		case "CE":
			if n < 28 {
				continue
			}
			blk := binary.LittleEndian.Uint32(e[4:])
			off := binary.LittleEndian.Uint32(e[12:])
			ln := binary.LittleEndian.Uint32(e[20:])
			at := uint64(blk)*sectorSize + uint64(off)
			if at/uint64(r.bs) > 1<<32-1 {
				return errors.New("mkiso: rebase: continuation area beyond 32-bit blocks")
			}
			put733(e[4:], uint32(at/uint64(r.bs)))
			put733(e[12:], uint32(at%uint64(r.bs)))
			if r.ceAreas[at] {
				continue
			}
			r.ceAreas[at] = true
			area, err := r.slice(at, uint64(ln))
			if err != nil {
				return err
			}
			if err := r.systemUse(area, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
