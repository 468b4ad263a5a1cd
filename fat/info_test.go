package fat

import "testing"

// TestInfoFreeAfterRemove: the free space Info reports after files were
// removed (before any allocation, when no free-space bitmap is built) is
// what a fresh mount counts, whether Info was asked before or after the
// removal and whether a Sync came between (found in review: FAT12/16
// counted such clusters twice).
func TestInfoFreeAfterRemove(t *testing.T) {
	for _, typ := range []string{"fat12", "fat16", "fat32"} {
		for _, order := range []string{"remove-info", "info-remove", "remove-sync-info"} {
			size := map[string]int64{"fat12": 4 << 20, "fat16": 32 << 20, "fat32": 100 << 20}[typ]
			_, d := newImage(t, size, 512, FormatOptions{Type: typ})
			v := mountRW(t, d)
			writeAll(t, v, "a.bin", randBytes(1, 100000))
			writeAll(t, v, "b.bin", randBytes(2, 30000))
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			v = mountRW(t, d)
			if order == "info-remove" {
				v.Info()
			}
			if err := v.Remove("a.bin"); err != nil {
				t.Fatal(err)
			}
			if order == "remove-sync-info" {
				if err := v.Sync(); err != nil {
					t.Fatal(err)
				}
				if err := v.Remove("b.bin"); err != nil {
					t.Fatal(err)
				}
			}
			got := v.Info().Free
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			if want := mustOpen(t, d, Options{}).Info().Free; got != want {
				t.Errorf("%s %s: Info().Free %d, a fresh mount counts %d", typ, order, got, want)
			}
		}
	}
}
