package fleet

import (
	"bufio"
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// SectionPages is how much of one section of a process's binary is in its
// RSS: the file pages the kernel has mapped for it. A Go binary's
// .text, .gopclntab and .rodata are most of RssFile; which of them grows
// tells running code (text), unwinding and symbolizing (pclntab) and type
// data (rodata) apart.
type SectionPages struct {
	Name          string `json:"name"`
	ResidentBytes int64  `json:"residentBytes"`
	MappedBytes   int64  `json:"mappedBytes"`
}

// residentSections reads which pages of exe the process pid has resident
// (/proc/<pid>/maps and /proc/<pid>/pagemap: the present bit is readable
// without privileges) and adds them up by the ELF section they hold.
func residentSections(pid int, exe string) ([]SectionPages, error) {
	pageSize := uint64(os.Getpagesize())
	real, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return nil, fmt.Errorf("resolve binary %s: %w", exe, err)
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, fmt.Errorf("read mappings of process %d: %w", pid, err)
	}
	ranges, err := fileMappings(maps, real)
	if err != nil {
		return nil, fmt.Errorf("mappings of process %d: %w", pid, err)
	}
	pagemap, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return nil, fmt.Errorf("open page map of process %d: %w", pid, err)
	}
	defer pagemap.Close()
	var pages []uint64
	for _, r := range ranges {
		resident, err := residentPages(pagemap, r, pageSize)
		if err != nil {
			return nil, fmt.Errorf("page map of process %d at %#x: %w", pid, r.start, err)
		}
		pages = append(pages, resident...)
	}
	f, err := elf.Open(real)
	if err != nil {
		return nil, fmt.Errorf("read sections of %s: %w", exe, err)
	}
	defer f.Close()
	var sections []elfSection
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS && s.Addr != 0 && s.Size > 0 {
			sections = append(sections, elfSection{s.Name, s.Addr, s.Addr + s.Size})
		}
	}
	return pagesBySection(pages, sections, pageSize), nil
}

// addressRange is one mapping of the binary, [start, end).
type addressRange struct{ start, end uint64 }

// fileMappings returns the address ranges of /proc/<pid>/maps that map path.
func fileMappings(maps []byte, path string) ([]addressRange, error) {
	var out []addressRange
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// address perms offset dev inode pathname; the pathname may hold
		// spaces, so it is everything after the fifth field.
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || strings.Join(fields[5:], " ") != path {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			return nil, fmt.Errorf("address range %q", fields[0])
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end < start {
			return nil, fmt.Errorf("address range %q", fields[0])
		}
		out = append(out, addressRange{start, end})
	}
	return out, sc.Err()
}

// residentPages returns the addresses of r's pages (of pageSize bytes,
// the unit of the page map) that are present and file-backed: bit 63 of a pagemap entry is "present", bit 61 "file page
// or shared anonymous" (Documentation/admin-guide/mm/pagemap.rst).
func residentPages(pagemap io.ReaderAt, r addressRange, pageSize uint64) ([]uint64, error) {
	n := (r.end - r.start) / pageSize
	buf := make([]byte, n*8)
	if _, err := pagemap.ReadAt(buf, int64(r.start/pageSize*8)); err != nil {
		return nil, err
	}
	var out []uint64
	for i := range n {
		e := binary.LittleEndian.Uint64(buf[i*8:])
		if e&(1<<63) != 0 && e&(1<<61) != 0 {
			out = append(out, r.start+i*pageSize)
		}
	}
	return out, nil
}

type elfSection struct {
	name       string
	start, end uint64
}

// pagesBySection adds up resident pages by the section they hold, the
// largest first. A page shared by two sections counts for the one it
// starts in, or the first that starts inside it; pages of no section
// (the ELF header, padding) count under "other".
func pagesBySection(pages []uint64, sections []elfSection, pageSize uint64) []SectionPages {
	bySection := map[string]*SectionPages{}
	get := func(name string) *SectionPages {
		if s, ok := bySection[name]; ok {
			return s
		}
		s := &SectionPages{Name: name}
		bySection[name] = s
		return s
	}
	for _, s := range sections {
		get(s.name).MappedBytes += int64(s.end - s.start)
	}
	for _, p := range pages {
		get(sectionOf(p, sections, pageSize)).ResidentBytes += int64(pageSize)
	}
	out := make([]SectionPages, 0, len(bySection))
	for _, s := range bySection {
		if s.ResidentBytes > 0 {
			out = append(out, *s)
		}
	}
	slices.SortFunc(out, func(a, b SectionPages) int {
		return cmp.Or(cmp.Compare(b.ResidentBytes, a.ResidentBytes), strings.Compare(a.Name, b.Name))
	})
	return out
}

// sectionOf names the section holding the page at p: the one p lies in,
// else the first starting inside the page, else "other".
func sectionOf(p uint64, sections []elfSection, pageSize uint64) string {
	for _, s := range sections {
		if s.start <= p && p < s.end {
			return s.name
		}
	}
	for _, s := range sections {
		if p <= s.start && s.start < p+pageSize {
			return s.name
		}
	}
	return "other"
}

// sectionSummary is the largest sections as "name resident of mapped MiB".
func sectionSummary(sections []SectionPages, top int) string {
	var parts []string
	for i, s := range sections {
		if i == top {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.1f of %.1f MiB", s.Name, float64(s.ResidentBytes)/(1<<20), float64(s.MappedBytes)/(1<<20)))
	}
	return strings.Join(parts, ", ")
}
