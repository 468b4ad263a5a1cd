// Package fuse serves a mediafs file system (ISO 9660 or FAT) to the
// kernel through FUSE, with hanwen/go-fuse/v2's node API (fs).
//
// # Mapping
//
// Every FUSE request is answered from the root package's interfaces only:
// mediafs.FS (Stat, ReadDir, Open, Info) for every medium, mediafs.LinkFS
// (Lstat, ReadLink) for Rock Ridge links, and mediafs.WritableFS and
// mediafs.File (OpenFile, WriteAt, Truncate, Mkdir, Remove, Rename, Chtimes,
// Sync) for FAT mounted read-write. A node knows its place in the tree by
// go-fuse's parent links (Inode.Path), which go-fuse keeps right across
// renames; an open file is an open mediafs file (fs.File, io.ReaderAt, and
// mediafs.File when writable), so reads and writes never look a path up.
//
// Files belong to the mounting user (Options.UID, GID). Media without
// permissions of their own (FAT, ISO 9660 without Rock Ridge) show
// directories 0555 and files 0444, or 0755 and 0644 when writable (a FAT
// file with the read-only attribute stays 0444; chmod sets and clears that
// attribute and ignores the bits FAT cannot keep, as vfat's "quiet" does).
// Rock Ridge modes, link counts, device numbers and times are shown as the
// medium has them. Directory link counts are 2 plus the subdirectories
// where the medium does not record them. The mount always uses the kernel's
// default_permissions checks, so --allow-other never lets other users past
// the modes shown.
//
// # Inode numbers
//
// st_ino is what the medium suggests: on ISO 9660 the Rock Ridge PX file
// serial number where present, else the byte position of the directory
// record; on FAT the place of the directory entry (fat.Sys.Ino), 1 for the
// root. A renamed FAT file keeps its number while the kernel knows its
// inode (so an open file's fstat never changes), and a file that later
// takes a place whose number is still in use gets a number from 2^56 up;
// see inoTable. Hard links of a Rock Ridge image share one inode.
//
// # Caching
//
// Read-only mounts (the default; the kernel mount is "ro", so every change
// fails with EROFS before it reaches us) let the kernel cache everything:
// entries, negative entries and attributes for an hour, symlink targets,
// directory listings (FOPEN_CACHE_DIR) and file pages, so mmap, re-reads
// and `cp` after `ls` are served by the page cache. They answer OPEN with
// ENOSYS, which tells the kernel never to send OPEN, RELEASE (nor, after a
// first ENOSYS, FLUSH) again and to keep file pages (FUSE's no_open,
// whose default is FOPEN_KEEP_CACHE): a file is read through its node's
// own open file, opened at the first read, which saves two round trips per
// file. OPENDIR gets ENOSYS too (FUSE's no_opendir): each READDIRPLUS
// opens a handle of its own, from the listing the node keeps (listingFS). Reads of a plain image file are answered by splicing the file's
// bytes straight from the image (its own page cache) into /dev/fuse,
// without a copy through this process; the first read of a small file
// also pushes the small files after it in its directory's listing into
// the kernel's cache, and while a tree is being read so does the end of
// each directory's listing for its first files (see prefetch.go), so that
// a tree copy does not wait for a round trip per file; during a tree walk
// a large file's first read starts pushing the rest of it, so that the
// reader does not fill the page cache itself (see stream.go). On any other medium (a ddrescue map, retries,
// timeouts, a block device) reads go through the driver's ReadAt, which
// names the sector of any failure, and nothing is read speculatively.
// Requests are up to 1 MiB (max_read, max_write) and run in parallel;
// READDIRPLUS answers a listing and the lookups of its entries in one go,
// from the entries already read.
//
// Writable mounts keep entries and attributes for a second (the kernel sees
// its own changes; the timeout bounds any case-insensitive aliasing),
// negative entries not at all, and file pages (FOPEN_KEEP_CACHE: nothing
// changes the volume behind the kernel's back). Every write reaches the
// driver when the kernel sends it; the driver keeps metadata in ordered
// batches, which fsync, an idle moment (Options.SyncAfter) and unmount
// commit, marking the volume clean.
//
// # Errors
//
// Errno is the one mapping from mediafs errors to errno values: bad
// sectors and time-outs are EIO (the whole request fails, never a short
// read that the kernel would take for the end of the file), a full volume
// ENOSPC, a bad name EINVAL, and so on. A failing read holds nothing but
// its own request: the rest of the mount keeps answering.
//
// # Locking
//
// go-fuse serves requests concurrently; the drivers are safe for
// concurrent use and do their own locking (FAT: one volume lock, shared by
// readers). This package adds a gate (an RWMutex that every request holds
// shared, and that Server.Close takes exclusively to stop serving before
// the volume is synced), the inode table's mutex, and a mutex per node for
// what it remembers (attributes, its own open file, which it holds while
// opening it, and a directory's listing). The read-ahead goroutine holds
// the gate shared for each file it pushes; Close stops it first. None of
// them is held across a call into go-fuse that could call back into the
// file system.
//
// # Limits
//
// A FAT file unlinked (or replaced by a rename) while open lives on for
// its open handles, readable and writable, until the last one closes, as
// POSIX has it and vfat does (the driver frees its clusters then).
// FAT has no links, symbolic links, special files or extended attributes
// (EPERM, as vfat; xattrs are off). Names match regardless of case, so, as
// on vfat, mv cannot change only the case of a name through the mount (the
// kernel sees both names as one file): `mediafs mv` can.
package fuse
