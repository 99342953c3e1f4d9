package fleet

import (
	"os"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testPage is the page size of the synthetic sections below.
const testPage = 4096

func TestPagesBySection(t *testing.T) {
	sections := []elfSection{
		{".tail", 0x403800, 0x403900},   // shares .text's last page, listed first
		{".text", 0x401000, 0x403800},   // 2.5 pages
		{".rodata", 0x404100, 0x405100}, // starts inside a page
	}
	tests := []struct {
		name  string
		pages []uint64
		want  []SectionPages
	}{
		{"none resident", nil, []SectionPages{}},
		{"within sections", []uint64{0x401000, 0x402000, 0x405000}, []SectionPages{
			{".text", 2 * testPage, 0x2800},
			{".rodata", testPage, 0x1000},
		}},
		{"a shared page counts once, for the section it starts in", []uint64{0x403000}, []SectionPages{
			{".text", testPage, 0x2800},
		}},
		{"a page before a section counts for the section starting inside it", []uint64{0x404000}, []SectionPages{
			{".rodata", testPage, 0x1000},
		}},
		{"pages of no section", []uint64{0x500000, 0x501000}, []SectionPages{
			{"other", 2 * testPage, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, pagesBySection(tt.pages, sections, testPage)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileMappings(t *testing.T) {
	maps := []byte(`00400000-01575000 r-xp 00000000 fd:01 123 /opt/bin/pullsecrets controller
01576000-02769000 r--p 01176000 fd:01 123 /opt/bin/pullsecrets controller
02769000-0277d000 rw-p 02369000 fd:01 123 /opt/bin/other
c000000000-c004000000 rw-p 00000000 00:00 0
7ffd1000-7ffd2000 r-xp 00000000 00:00 0 [vdso]
`)
	got, err := fileMappings(maps, "/opt/bin/pullsecrets controller")
	if err != nil {
		t.Fatal(err)
	}
	want := []addressRange{{0x400000, 0x1575000}, {0x1576000, 0x2769000}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(addressRange{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := fileMappings([]byte("zz-00 r-xp 0 0 0 /x\n"), "/x"); err == nil {
		t.Error("a malformed address range: no error")
	}
}

// TestResidentSectionsOfThisProcess reads the test binary's own pages: the
// code running now is resident, and no section holds more than it maps.
func TestResidentSectionsOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pagemap is Linux's")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	page := int64(os.Getpagesize())
	sections, err := residentSections(os.Getpid(), exe)
	if err != nil {
		t.Fatal(err)
	}
	u, err := readProcUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var text bool
	var total int64
	for _, s := range sections {
		total += s.ResidentBytes
		if s.Name == ".text" && s.ResidentBytes > 0 {
			text = true
		}
		if s.Name != "other" && s.ResidentBytes > s.MappedBytes+2*page {
			t.Errorf("%s: %d resident bytes of %d mapped", s.Name, s.ResidentBytes, s.MappedBytes)
		}
	}
	if !text {
		t.Errorf("no resident .text in %+v", sections)
	}
	if total > u.File+(1<<20) {
		t.Errorf("the sections add up to %d bytes, more than RssFile %d", total, u.File)
	}
	t.Logf("%s (RssFile %.1f MiB)", sectionSummary(sections, 3), float64(u.File)/(1<<20))
}

func TestBinaryPagesNamesEachProcess(t *testing.T) {
	text := []SectionPages{{".text", 14 << 20, 17 << 20}, {".gopclntab", 10 << 20, 12 << 20}, {".rodata", 5 << 20, 5 << 20}, {".data", 1 << 20, 1 << 20}}
	peer := []SectionPages{{".text", 11 << 20, 15 << 20}}
	r := &Result{
		Baseline: &Phase{Name: "baseline", BinaryPages: text},
		Phases:   []Phase{{Name: "cold"}, {Name: "steady", BinaryPages: text[:1]}},
		Peer:     &Peer{Binary: "/work/peer/imagepullsecret-patcher", BinaryPages: peer},
	}
	want := "pullsecrets on the empty cluster: .text 14.0 of 17.0 MiB, .gopclntab 10.0 of 12.0 MiB, .rodata 5.0 of 5.0 MiB; " +
		"after steady: .text 14.0 of 17.0 MiB; imagepullsecret-patcher: .text 11.0 of 15.0 MiB"
	if got := r.binaryPages(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := (&Result{Baseline: &Phase{Name: "baseline"}, Phases: []Phase{{Name: "cold"}}}).binaryPages(); got != "" {
		t.Errorf("without pages: %q", got)
	}
}
