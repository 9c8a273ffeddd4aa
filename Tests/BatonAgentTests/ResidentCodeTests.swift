@testable import BatonAgent
import Foundation
import Testing

/// Which pages `batond run` gives back after start-up: the resident pages of its own
/// binary that are still the file's, never its relocated data or another file's.
@Suite struct ResidentCodeTests {
    @Test func onlyTheBinarysMappings() {
        let maps = """
            55d0c0000000-55d0c0200000 r--p 00000000 fd:01 4242 /usr/local/bin/batond
            55d0c0200000-55d0c1a00000 r-xp 00200000 fd:01 4242 /usr/local/bin/batond
            55d0c1a00000-55d0c1b00000 rw-p 01a00000 fd:01 4242 /usr/local/bin/batond
            55d0c1b10000-55d0c1c00000 rw-p 00000000 00:00 0 [heap]
            7f0000000000-7f0000100000 r-xp 00000000 fd:01 777 /usr/lib/x86_64-linux-gnu/libc.so.6
            7f0000200000-7f0000300000 r--p 00000000 fd:01 4242 /usr/local/bin/batond (deleted)
            garbage line
            """
        let ranges = ResidentCode.parseMaps(maps, inode: 4242)
        #expect(
            ranges == [
                0x55d0_c000_0000..<0x55d0_c020_0000, 0x55d0_c020_0000..<0x55d0_c1a0_0000, 0x55d0_c1a0_0000..<0x55d0_c1b0_0000,
                0x7f00_0020_0000..<0x7f00_0030_0000,
            ])
        #expect(ResidentCode.parseMaps(maps, inode: 1).isEmpty)
    }

    /// The shared libraries' mappings are given back too (the kernel keeps the pages
    /// other processes map); never the heap, a device, a memfd or an ordinary file.
    @Test func sharedLibraryMappings() {
        let maps = """
            55d0c0200000-55d0c1a00000 r-xp 00200000 fd:01 4242 /usr/local/bin/batond
            55d0c1b10000-55d0c1c00000 rw-p 00000000 00:00 0 [heap]
            7f0000000000-7f0000100000 r-xp 00000000 fd:01 777 /usr/lib/x86_64-linux-gnu/libc.so.6
            7f0000100000-7f0000180000 r--p 00000000 fd:01 778 /usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30
            7f0000200000-7f0000210000 r--p 00000000 fd:01 779 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
            7f0000300000-7f0000310000 rw-s 00000000 00:01 12 /memfd:buffer (deleted)
            7f0000400000-7f0000410000 r--s 00000000 fd:01 900 /var/lib/baton/state/some.sqlite
            7f0000500000-7f0000510000 rw-s 00000000 00:05 3 /dev/zero
            7f0000600000-7f0000610000 r-xp 00000000 fd:01 901 /opt/old/libgone.so (deleted)
            7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
            """
        #expect(
            ResidentCode.sharedLibraryMappings(parseMapsText: maps) == [
                0x7f00_0000_0000..<0x7f00_0010_0000, 0x7f00_0010_0000..<0x7f00_0018_0000, 0x7f00_0020_0000..<0x7f00_0021_0000,
            ])
    }

    /// Present file pages (bits 63 and 61) join into runs; absent pages and anonymous
    /// copies (present, not a file page) end them.
    @Test func runsOfPresentFilePages() {
        let file: UInt64 = 1 << 63 | 1 << 61, anonymous: UInt64 = 1 << 63, absent: UInt64 = 0
        let entries = [file, file, anonymous, file, absent, absent, file, file]
        #expect(
            ResidentCode.fileRuns(entries, base: 0x10000, pageSize: 0x1000) == [
                0x10000..<0x12000, 0x13000..<0x14000, 0x16000..<0x18000,
            ])
        #expect(ResidentCode.fileRuns([anonymous, absent], base: 0x10000, pageSize: 0x1000).isEmpty)
    }

    #if os(Linux)
    /// The running test binary has its code mapped, some of it resident as pages of the
    /// file, and /proc says how much is resident.
    @Test func findsThisProcesssOwnCode() throws {
        var info = stat()
        try #require(stat("/proc/self/exe", &info) == 0)  // follows the link to the binary
        let mappings = ResidentCode.mappings(inode: UInt64(info.st_ino))
        #expect(!mappings.isEmpty)
        let pagemap = open("/proc/self/pagemap", O_RDONLY)
        defer { close(pagemap) }
        let runs = mappings.flatMap { ResidentCode.filePageRuns($0, pageSize: UInt(sysconf(Int32(_SC_PAGESIZE))), pagemap: pagemap) }
        #expect(!runs.isEmpty)
        #expect(ResidentCode.residentKiB() > 0)
    }
    #endif
}
