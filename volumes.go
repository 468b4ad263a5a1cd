package mediafs

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/mediafs/mediafs/cache"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660"
	"github.com/mediafs/mediafs/partition"
)

// VolumeInfo describes an opened volume; its JSON form is what
// `mediafs info --json` prints (DESIGN.md, "info").
type VolumeInfo struct {
	FS         string          `json:"fs"` // fat12, fat16, fat32, iso9660
	Label      string          `json:"label"`
	SectorSize int             `json:"sector_size"`
	BlockSize  int             `json:"block_size"` // ISO logical block, FAT cluster
	Size       int64           `json:"size"`
	Free       *int64          `json:"free,omitempty"`  // FAT
	Dirty      *bool           `json:"dirty,omitempty"` // FAT
	Serial     string          `json:"serial,omitempty"`
	Joliet     *bool           `json:"joliet,omitempty"`     // ISO
	RockRidge  *bool           `json:"rock_ridge,omitempty"` // ISO
	ElTorito   *bool           `json:"el_torito,omitempty"`  // ISO
	Namespace  string          `json:"namespace,omitempty"`  // ISO: the name space in use
	Session    int64           `json:"session,omitempty"`    // ISO: first sector of the session read
	Boot       []BootInfo      `json:"boot,omitempty"`       // ISO: El Torito entries
	Partition  int             `json:"partition,omitempty"`  // the partition opened, from 1
	Partitions []PartitionInfo `json:"partitions,omitempty"`
	Details    map[string]any  `json:"-"` // file-system-specific fields, at the top level in JSON
	Warnings   []string        `json:"warnings"`
}

// MarshalJSON puts the file-system-specific Details beside the common
// fields, under their own names (clusters, fats, oem_name, ... for FAT;
// volume_blocks, joliet_label, publisher, ... for ISO 9660).
func (v VolumeInfo) MarshalJSON() ([]byte, error) {
	type plain VolumeInfo
	base, err := json.Marshal(plain(v))
	if err != nil || len(v.Details) == 0 {
		return base, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	for k, val := range v.Details {
		if _, taken := m[k]; taken {
			continue
		}
		b, err := json.Marshal(val)
		if err != nil {
			return nil, err
		}
		m[k] = b
	}
	return json.Marshal(m)
}

// BootInfo is one El Torito boot catalog entry.
type BootInfo struct {
	Index       int    `json:"index"` // from 1, as `cat --boot N` takes it
	Platform    string `json:"platform"`
	Bootable    bool   `json:"bootable"`
	Emulation   string `json:"emulation"`
	LoadSegment uint16 `json:"load_segment"`
	SystemType  uint8  `json:"system_type"`
	LoadSectors uint16 `json:"load_sectors"` // 512-byte virtual sectors
	LoadRBA     uint32 `json:"load_rba"`     // 2048-byte sector of the image
	Size        int64  `json:"size"`         // bytes `cat --boot` yields
}

// PartitionInfo is one entry of a partition table.
type PartitionInfo struct {
	Index    int    `json:"index"`
	Table    string `json:"table"` // mbr or gpt
	Start    int64  `json:"start"` // bytes
	Size     int64  `json:"size"`  // bytes
	Type     string `json:"type"`
	TypeName string `json:"type_name,omitempty"`
	Name     string `json:"name,omitempty"`
	Bootable bool   `json:"bootable,omitempty"`
	Selected bool   `json:"selected,omitempty"`
}

func partitionInfos(t *partition.Table, selected int) []PartitionInfo {
	var out []PartitionInfo
	for _, p := range t.Partitions {
		out = append(out, PartitionInfo{Index: p.Index, Table: t.Kind, Start: p.Start, Size: p.Size,
			Type: p.Type, TypeName: p.TypeName, Name: p.Name, Bootable: p.Bootable, Selected: p.Index == selected})
	}
	return out
}

// CacheStatser is implemented by every FS: it reports the block cache's
// pinned and dirty counts, which the tests assert are zero after every
// operation.
type CacheStatser interface {
	CacheStats() cache.Stats
}

// BootFS is implemented by ISO 9660 file systems: El Torito boot images.
type BootFS interface {
	Boot(i int) (*iso9660.BootImage, error)
}

// isoFS is an ISO 9660 volume.
type isoFS struct {
	*iso9660.FS
	dev  device.Device
	info VolumeInfo
}

func openISO(d device.Device, v device.Device, o *options) (FS, error) {
	f, err := iso9660.Open(v, iso9660.Options{Namespace: o.namespace, Session: o.session})
	if err != nil {
		return nil, err
	}
	in := f.Info()
	t, fl := true, false
	b := func(x bool) *bool {
		if x {
			return &t
		}
		return &fl
	}
	vi := VolumeInfo{
		FS: "iso9660", Label: in.Label, SectorSize: 2048, BlockSize: in.BlockSize, Size: in.Size,
		Joliet: b(in.Joliet), RockRidge: b(in.RockRidge), ElTorito: b(in.ElTorito),
		Namespace: in.Namespace, Session: o.session, Warnings: append([]string{}, in.Warnings...),
		Details: map[string]any{"volume_blocks": in.VolumeBlocks},
	}
	for k, val := range map[string]string{"joliet_label": in.JolietLabel, "system_id": in.SystemID,
		"volume_set_id": in.VolumeSetID, "publisher": in.Publisher, "preparer": in.Preparer, "application": in.Application} {
		if val != "" {
			vi.Details[k] = val
		}
	}
	if in.Joliet {
		vi.Details["joliet_level"] = in.JolietLevel
	}
	if !in.Created.IsZero() {
		vi.Details["created"] = in.Created.UTC().Format(time.RFC3339)
	}
	if !in.Modified.IsZero() {
		vi.Details["modified"] = in.Modified.UTC().Format(time.RFC3339)
	}
	for _, e := range in.Boot {
		vi.Boot = append(vi.Boot, BootInfo{Index: e.Index + 1, Platform: e.Platform, Bootable: e.Bootable,
			Emulation: e.Emulation, LoadSegment: e.LoadSegment, SystemType: e.SystemType,
			LoadSectors: e.SectorCount, LoadRBA: e.LoadRBA, Size: e.Size})
	}
	// isohybrid images carry a partition table beside the ISO volume.
	if ft, _ := findPartitionTable(d, o); ft != nil {
		vi.Partitions = partitionInfos(ft.tab, 0)
	}
	return &isoFS{FS: f, dev: d, info: vi}, nil
}

func (f *isoFS) Info() VolumeInfo { return f.info }

func (f *isoFS) Close() error {
	err := f.FS.Close()
	if cerr := f.dev.Close(); err == nil {
		err = cerr
	}
	return err
}

// fatFS is a FAT volume. Its VolumeInfo is made on each call from the
// driver's, which counts the free clusters (reading the whole FAT, which
// Open must not do) once and then keeps the count up to date: free space
// and the dirty mark change with every write, through any open file.
type fatFS struct {
	*fat.FS
	dev       device.Device
	partition int
	parts     []PartitionInfo
	extraWarn []string // from the partition table
}

// openFAT opens the FAT volume of size bytes at byte off of d, whose boot
// sector says it has bps-byte sectors.
func openFAT(d device.Device, off, size int64, bps int, where string, o *options) (*fatFS, error) {
	var vol device.Device = d
	if off != 0 || size != d.Size() {
		w, err := device.NewWindow(d, off, size)
		if err != nil {
			return nil, err
		}
		vol = w
	}
	// The BPB decides the sector size of an image; a block device keeps its
	// own (the driver accepts a BPB sector that is a multiple of it).
	if bps != vol.SectorSize() && bps%vol.SectorSize() == 0 && !o.blockDev {
		v, err := device.NewView(vol, bps)
		if err != nil {
			return nil, err
		}
		vol = v
	}
	// A block device's bad sectors stay bad: clusters that fail a write
	// are marked so that they are not used again. An image file's "bad
	// sector" is a fault of the moment (an injected map, a full disk).
	f, err := fat.Open(vol, fat.Options{CodePage: o.codePage, Location: o.location, Writable: o.writable, MarkBadClusters: o.writable && isBlockDevice(d)})
	if err != nil {
		if where != "" {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return nil, err
	}
	ff := &fatFS{FS: f, dev: d}
	if where != "" {
		fmt.Sscanf(where, "partition %d", &ff.partition)
	}
	return ff, nil
}

// OpenWarnings returns what was tolerated while opening, without the FAT
// scan that Info makes.
func (f *fatFS) OpenWarnings() []string {
	return append(slices.Clone(f.extraWarn), f.FS.MountWarnings()...)
}

func (f *fatFS) Info() VolumeInfo {
	in := f.FS.Info()
	free, dirty := in.Free, in.Dirty
	return VolumeInfo{
		FS: in.Type, Label: in.Label, SectorSize: in.SectorSize, BlockSize: in.ClusterSize,
		Size: in.Size, Free: &free, Dirty: &dirty,
		Serial:     fmt.Sprintf("%04X-%04X", in.Serial>>16, in.Serial&0xFFFF),
		Partition:  f.partition,
		Partitions: f.parts,
		Warnings:   append(slices.Clone(f.extraWarn), in.Warnings...),
		Details: map[string]any{"clusters": in.Clusters, "fats": in.FATs, "active_fat": in.ActiveFAT,
			"fats_differ": in.FATsDiffer, "oem_name": in.OEMName, "boot_label": in.BootLabel,
			"hard_error": in.HardError},
	}
}

func (f *fatFS) Close() error {
	err := f.FS.Close()
	if cerr := f.dev.Close(); err == nil {
		err = cerr
	}
	return err
}

// OpenWarnings returns the warnings found while opening.
func (f *isoFS) OpenWarnings() []string { return slices.Clone(f.info.Warnings) }

// Warnings returns every warning so far: those of opening, and those the
// driver added while reading (a repeated or neutralised name, a damaged
// Rock Ridge entry). Like OpenWarnings it never scans the volume.
func Warnings(f FS) []string {
	if i, ok := f.(*isoFS); ok {
		return i.FS.Info().Warnings
	}
	return OpenWarnings(f)
}

// OpenWarnings returns what was tolerated while opening f. Unlike
// f.Info().Warnings it never scans the volume (a FAT's free-cluster count
// reads the whole FAT).
func OpenWarnings(f FS) []string {
	if w, ok := f.(interface{ OpenWarnings() []string }); ok {
		return w.OpenWarnings()
	}
	return f.Info().Warnings
}

// ReadLink reports that FAT has no symbolic links.
func (f *fatFS) ReadLink(name string) (string, error) {
	if _, err := f.Stat(name); err != nil {
		return "", err
	}
	return "", &fs.PathError{Op: "readlink", Path: "/" + name, Err: fs.ErrInvalid}
}

// Lstat is Stat: FAT has no symbolic links.
func (f *fatFS) Lstat(name string) (fs.FileInfo, error) { return f.Stat(name) }

var (
	_ LinkFS = (*isoFS)(nil)
	_ LinkFS = (*fatFS)(nil)
)
