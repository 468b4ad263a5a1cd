package iso9660

import "fmt"

// maxPathTable bounds the path table read for the sanity check.
const maxPathTable = 16 << 20

// checkPathTable reads the type L path table (ECMA-119 9.4) and reports what
// is wrong with it as warnings; the tree itself is always walked from the
// root directory record.
func (f *FS) checkPathTable(pvd *volumeDescriptor, root dirRecord) {
	size := int64(pvd.PathTableSize)
	off := f.g.blockToByte(int64(pvd.LTable))
	switch {
	case size == 0:
		f.warn("the primary volume descriptor has an empty path table")
		return
	case size > maxPathTable || off+size > f.dev.Size():
		f.warn("path table of %d bytes at byte %d does not fit the medium", size, off)
		return
	}
	buf := make([]byte, size)
	if _, err := f.c.ReadAt(buf, off); err != nil {
		f.warn("path table: %v", err)
		return
	}
	if msg := validatePathTable(buf, int64(root.Extent)+int64(root.XARLen), f.g); msg != "" {
		f.warn("path table at byte %d: %s", off, msg)
	}
}

// validatePathTable checks a type L path table: the first record is the
// root, and each record's parent comes before it. It returns a description
// of the first problem, or "". A zero identifier length in the last logical
// block of a table whose size is a multiple of the block size ends the
// table (the Video CD quirk Windows CDFS accepts, from NTI CD Maker).
func validatePathTable(b []byte, rootExtent int64, g geometry) string {
	count := 0
	for pos := 0; pos < len(b); {
		r, n, err := decodePathTableRecord(b[pos:])
		if err != nil {
			if r.NameLen == 0 && len(b) >= 8 && int64(len(b))%g.blockSize == 0 && int64(pos) >= int64(len(b))-g.blockSize {
				return "" // Video CD padding
			}
			if r.NameLen == 0 && allZero(b[pos:]) {
				return ""
			}
			return fmt.Sprintf("record %d at offset %d: %v", count+1, pos, err)
		}
		count++
		if count == 1 {
			if r.NameLen != 1 || r.Name[0] != 0 || r.Parent != 1 {
				return "the first record is not the root"
			}
			if int64(r.Extent)+int64(r.XARLen) != rootExtent {
				return fmt.Sprintf("root at block %d, but the root directory record says %d", r.Extent, rootExtent)
			}
		} else if int(r.Parent) < 1 || int(r.Parent) >= count {
			return fmt.Sprintf("record %d names parent %d", count, r.Parent)
		}
		pos += n
	}
	return ""
}
