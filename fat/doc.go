// Package fat reads, writes and formats FAT12, FAT16 and FAT32 volumes. The
// write side (write.go, dirwrite.go, alloc.go, names.go) and the formatter
// (mkfs.go) document their ordering and naming rules where they are coded.
//
// The on-disk format is Microsoft's "FAT: General Overview of On-Disk Format"
// (fatgen103, version 1.03, December 2000); section numbers below refer to it.
//
//   - Sector 0 is the boot sector with the BIOS Parameter Block (BPB,
//     "Boot Sector and BPB"): bytes per sector (512…4096 here), sectors per
//     cluster, reserved sectors, the number of FATs and their size, the
//     number of root entries (FAT12/16) or the root cluster (FAT32). The
//     signature 0x55 0xAA sits at byte 510 even when sectors are larger.
//     FAT32 volumes also have an FSInfo sector ("FAT32 FSInfo Sector
//     Structure") whose fields are only hints, and a backup boot sector
//     (usually sector 6).
//   - The type is decided by the count of clusters ("FAT Type
//     Determination"): fewer than 4085 is FAT12, fewer than 65525 FAT16. A
//     BPB of FAT32 shape (FATSz16 == 0) is FAT32 whatever its count, as Linux
//     and Windows decide; counts near a threshold draw a warning, since
//     readers disagree there.
//   - The FAT ("FAT Data Structure") holds one entry per cluster, 12, 16 or
//     28 bits wide (the top 4 bits of a FAT32 entry are reserved). An entry
//     is free (0), the next cluster of a chain, bad (…F7) or end-of-chain
//     (≥ …F8). FAT[1] carries the clean-shutdown and hard-error bits on
//     FAT16/32.
//   - A directory ("FAT Directory Structure") is an array of 32-byte
//     entries: the FAT12/16 root in a fixed region after the FATs, every
//     other directory (and the FAT32 root) in a cluster chain. Long names
//     ("FAT Long Directory Entries") are stored in UTF-16 slots before the
//     short entry, guarded by a checksum of the short name.
//
// The Microsoft rules are applied as tolerantly as Windows' fastfat and
// Linux's vfat drivers apply them: deviations that those drivers accept
// mount, with a note in Info.Warnings.
//
// Everything read from the medium is bounded before use: cluster numbers are
// checked against the cluster count, chains are walked with loop detection
// (Microsoft KB Q247858), directories are capped at 65536 entries and paths
// that would revisit an ancestor directory are refused. Metadata (boot
// sector, FAT, directories) goes through the block cache one sector at a
// time; file data goes straight from the device into the caller's buffer in
// one request per run of contiguous clusters.
//
// # Concurrency and locking
//
// An FS and its Files are safe for concurrent use. The locks, in the order
// they are taken (a goroutine holding one may take only those below it):
//
//  1. File.mu, per handle: the handle's offset and closed flag.
//  2. FS.mu, the volume lock (sync.RWMutex): every read holds it shared,
//     every change exclusively, from begin to end (write.go). It guards
//     the file states (size, entry, chain head), the free-space bitmap,
//     FSInfo, the dirty and batch state. Readers and writers of different
//     files therefore serialise only on changes, never on one another's
//     reads.
//  3. chain.mu, per file: its lazily walked cluster chain. It is held
//     while the FAT sectors the walk needs are read, so a stalled FAT
//     sector stalls the readers of that one file.
//  4. Taken for short critical sections, never across another lock or any
//     I/O: FS.openMu (the open files by entry), the parsed-directory
//     cache's mutex, and the block cache's own mutex.
//
// The block cache never holds its mutex across a device request: a medium
// that stalls on one sector stalls only the requests that need that
// sector or one read in the same request with it (directories and the FAT
// are read ahead in runs of up to 64 KiB), and the changes queued behind
// the volume lock; a failed read-ahead is only a hint (each sector is
// then read alone, and only those errors count), and a device
// that never answers is turned into an error by device.Timeout. Every error path releases what it took (deferred
// unlocks; every cache Get is paired with a Release), so after any failed
// operation nothing is pinned or locked: the tests assert it with
// CacheStats, TryLock and goleak (badsector_test.go).
//
// Media errors met by any request, read or write, are noted (watched in
// fs.go) and turned into the volume's dirty and hard-error marks by the
// next change, Sync or Close, under the volume lock (R-FAT-5); marking is
// best effort and never done by the failing request itself.
package fat
