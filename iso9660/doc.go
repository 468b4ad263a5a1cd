// Package iso9660 reads CD-ROM file systems: ECMA-119 (ISO 9660) with the
// Joliet, Rock Ridge (SUSP 1.12 / RRIP 1.12), El Torito 1.0 and zisofs
// extensions, from a device whose sectors are 2048 bytes.
//
// # Units
//
// Two units meet on a CD and are never confused here (units.go is the one
// place that converts between them):
//
//   - the logical sector (ECMA-119 6.1.2) is 2048 bytes. The system area is
//     sectors 0–15, the volume descriptor set starts at sector 16 (6.2.1), and
//     a directory record never crosses a sector boundary (6.8.1.1). Device
//     I/O is in whole sectors.
//   - the logical block (6.2.2) is 2^(n+9) bytes and no larger than a sector:
//     512, 1024 or 2048, read from the Primary Volume Descriptor (8.4.12). Every
//     extent location, the volume space size, path table locations and Rock
//     Ridge CE/CL/PL locations are counted in logical blocks. With a 512- or
//     1024-byte block a file or directory may start and end in the middle of
//     a sector.
//
// A file's size is its data length; its allocation is the sum of its
// sections, the last rounded up to the logical block (never to the sector:
// Microsoft KB Q142687, where NT 4.0's CDFS asked its extent map about file
// offsets past the allocation and failed with "Error performing inpage
// operation"). Reads may be widened to whole sectors on the disk side, through
// a bounce buffer; bytes outside a file's extents are never returned, and a
// widened read never runs past the end of the medium.
//
// # Structures
//
//   - Volume Descriptors (ECMA-119 8): type 0 Boot Record (El Torito), 1
//     Primary (8.4), 2 Supplementary (8.5; Joliet when its escape sequences
//     are %/@, %/C or %/E for UCS-2 levels 1–3; ISO 9660:1999 enhanced
//     descriptors have version 2), 3 Volume Partition (ignored), 255
//     Terminator (8.3). The scan stops at the terminator, at a descriptor
//     without "CD001", or after maxVolumeDescriptors.
//   - Directory Records (9.1): length, extended attribute record length
//     (data starts after it, 9.5), extent, data length, recording date (9.1.5),
//     flags (9.1.6: hidden, directory, associated, multi-extent), file unit
//     size and interleave gap (9.1.7, 9.1.8, interleaved files), name, system
//     use area. Files of interchange level 3 may have several sections
//     (multi-extent), each in its own consecutive record with the same name.
//   - Path Tables (9.4): parsed only as a sanity check (warnings); the tree is
//     always walked from the root directory record.
//   - Joliet: the same structures in a second tree whose names are UCS-2 big
//     endian, up to 64 characters (103 with mkisofs -joliet-long).
//   - SUSP 1.12 entries in the system use area of each record (SP, CE, ST, ER,
//     ES, PD), after an optional 14-byte CD-ROM XA prefix and the SP's LEN_SKP;
//     RRIP 1.12 entries: PX (mode, links, owner, serial), PN (device), SL
//     (symbolic link), NM (name), TF (times), CL/PL/RE (relocation of deep
//     directories into rr_moved), and the non-standard ZF (zisofs). Continuation
//     areas are followed with a bound on their number and on their total size,
//     and a visited set catches loops.
//   - zisofs: a file whose RR ZF entry says "pz" holds a header (magic, header
//     size, log2 block size 15–17), a table of block pointers and zlib-
//     compressed blocks; it is decompressed transparently. A ZF with other
//     parameters is ignored and the raw bytes are shown.
//   - El Torito 1.0: the boot record points at the boot catalog (in 2048-byte
//     sectors): a validation entry (checksum, key 55 AA), the initial/default
//     entry, then section headers (0x90, last 0x91) with section entries. Boot
//     images are reported by Info and read with Boot; they add nothing to the
//     tree.
//
// # Namespaces and names
//
// One tree is shown: Rock Ridge if the primary tree carries it, else Joliet,
// else plain ISO 9660 names (Options.Namespace overrides). As Linux does, a
// primary root holding only "." and ".." gives way to a Joliet root. Names keep
// the case the medium stores; ISO and Joliet names lose their ";version" and a
// trailing dot. The relocation directory rr_moved is hidden and relocated
// directories appear at their real place. Hidden (existence flag) and
// associated files are shown and marked in Sys.
//
// Lookups compare names exactly first; in the ISO and Joliet namespaces a name
// that is not found is then compared case-insensitively (as Linux's
// check=relaxed), so "readme.txt" finds "README.TXT". Rock Ridge names are
// case-sensitive.
//
// # Symbolic links
//
// Open, Stat and ReadDir's Info follow nothing the caller did not ask for:
// ReadDir and Lstat describe a symbolic link itself, while Open and Stat follow
// it (and further links, up to 40) when its target resolves inside the image;
// a target that does not resolve is an error for Open and Stat, as with
// os.DirFS. Absolute targets are taken relative to the image root. ReadLink
// returns the target as stored.
//
// # Robustness
//
// Every length, count and offset read from the medium is bounded before use.
// Corrupt directory records end the directory with an error that names the
// byte offset; the entries before it are still returned. Directory cycles
// (a child extent that is an ancestor, CL/PL loops) and continuation-area
// loops are detected. No structure allocates more than the image size
// justifies.
//
// # Concurrency and locking
//
// An FS and its files are safe for concurrent use; the medium is never
// written, so there is no volume lock. The locks, none of them held across
// another lock's acquisition in the opposite order:
//
//   - FS.mu guards the parsed-directory cache (dirs, dirNodes) and the
//     warnings. It is held only to look up or store a listing, never while
//     a directory is read: two readers of one uncached directory may both
//     parse it (the second store wins; both results are equal).
//   - FS.bootOnce reads the El Torito catalog once.
//   - Per handle, in this order: handle.mu (closed flag and offset; Read
//     holds it for the whole read, so Reads of one handle take turns,
//     while ReadAt takes it only to check the flag), then the zisofs
//     mutex (the block being inflated: concurrent readers of one
//     compressed file take turns), then lastSector.mu (the partial sector
//     a small read keeps, held while that one sector is read). A stalled
//     sector therefore stalls only the handle that asked for it.
//
// Below them the block cache pins blocks for the length of one parse and
// never holds its own mutex during I/O. A media error leaves nothing held:
// a listing that met one is not cached, so the next request asks the
// medium again.
package iso9660
