import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// Symbolic and hard links: only relative symlinks that stay inside the release, only hard
/// links to earlier regular files of the same archive.
@Suite struct LinkRefusalTests {
    @Test func absoluteSymlinks() throws {
        try expectRefusal(.symlinkAbsolute) { _ in tar { $0.symlink("passwd", to: "/etc/passwd") } }
        try expectRefusal(.symlinkAbsolute) { sandbox in tar { $0.symlink("keep", to: "\(sandbox.outside)/keep.txt") } }
        // The pax linkpath is what counts.
        try expectRefusal(.symlinkAbsolute) { _ in
            tar {
                $0.pax([("linkpath", "/etc/shadow")])
                $0.symlink("shadow", to: "harmless")
            }
        }
        try expectRefusal(.symlinkAbsolute) { _ in
            tar {
                $0.gnuLongLink("/" + String(repeating: "x/", count: 60) + "etc")
                $0.symlink("deep", to: "harmless")
            }
        }
    }

    @Test(arguments: [
        ("up", ".."),
        ("up", "../outside/keep.txt"),
        ("a/up", "../../outside"),
        ("a/b/c", "../../.."),
        ("lex", "a/../../outside"),
        ("dots", "./.././outside"),
    ])
    func escapingSymlinks(_ name: String, _ target: String) throws {
        try expectRefusal(.symlinkEscape) { _ in tar { $0.symlink(name, to: target) } }
    }

    @Test func emptySymlinkTarget() throws {
        try expectRefusal(.symlinkEscape) { _ in tar { $0.symlink("nothing", to: "") } }
    }

    /// `d -> .` makes `d/..` the parent of the root, although lexically it is the root.
    @Test func escapeThroughAnEarlierSymlink() throws {
        try expectRefusal(.symlinkEscape) { _ in
            tar {
                $0.symlink("d", to: ".")
                $0.symlink("e", to: "d/../outside")
            }
        }
    }

    /// The link looks harmless when it is created; a symlink listed after it changes where it leads.
    @Test func escapeThroughALaterSymlink() throws {
        let errors = try expectRefusal(.symlinkEscape) { _ in
            tar {
                $0.directory("a/")
                $0.symlink("x", to: "a/b/../..")
                $0.symlink("a/b", to: ".")
            }
        }
        #expect(errors.allSatisfy { $0.entry == "x" })
    }

    @Test func symlinkLoop() throws {
        try expectRefusal(.symlinkEscape) { _ in
            tar {
                $0.symlink("a", to: "b")
                $0.symlink("b", to: "a")
            }
        }
    }

    /// Long but legitimate targets resolve quickly; a deep climb back out is still caught.
    @Test func longSymlinkTargets() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let down = Array(repeating: "x", count: 600).joined(separator: "/")
        let up = Array(repeating: "..", count: 600).joined(separator: "/")
        let summary = try sandbox.extract(tar: tar {
            $0.directory("d/")
            $0.symlink("d/ok", to: "\(down)/\(up)/sibling")
        }).get()
        #expect(summary.symlinks == 1)
        try expectRefusal(.symlinkEscape) { _ in tar { $0.symlink("bad", to: "\(down)/\(up)/../x") } }
    }

    @Test func hardLinkToAMissingFile() throws {
        try expectRefusal(.hardlinkInvalid) { _ in tar { $0.hardLink("link", to: "missing.txt") } }
    }

    @Test func hardLinkToALaterFile() throws {
        try expectRefusal(.hardlinkInvalid) { _ in
            tar {
                $0.hardLink("link", to: "later.txt")
                $0.file("later.txt", "x")
            }
        }
    }

    @Test func hardLinkOutside() throws {
        try expectRefusal(.hardlinkInvalid) { _ in tar { $0.hardLink("keep", to: "../outside/keep.txt") } }
        try expectRefusal(.hardlinkInvalid) { sandbox in tar { $0.hardLink("keep", to: "\(sandbox.outside)/keep.txt") } }
        try expectRefusal(.hardlinkInvalid) { _ in tar { $0.hardLink("passwd", to: "/etc/passwd") } }
    }

    @Test func hardLinkToADirectoryOrSymlink() throws {
        try expectRefusal(.hardlinkInvalid) { _ in
            tar {
                $0.directory("d/")
                $0.hardLink("link", to: "d")
            }
        }
        try expectRefusal(.hardlinkInvalid) { _ in
            tar {
                $0.file("file.txt", "x")
                $0.symlink("sym", to: "file.txt")
                $0.hardLink("link", to: "sym")
            }
        }
        // A path through a symlink is not the file, even if the kernel would find it.
        try expectRefusal(.hardlinkInvalid) { _ in
            tar {
                $0.file("d/file.txt", "x")
                $0.symlink("s", to: "d")
                $0.hardLink("link", to: "s/file.txt")
            }
        }
    }

    @Test func hardLinkWithAnEmptyTarget() throws {
        try expectRefusal(.hardlinkInvalid) { _ in tar { $0.hardLink("link", to: "") } }
        try expectRefusal(.hardlinkInvalid) { _ in
            tar {
                $0.file("file.txt", "x")
                $0.hardLink("link", to: "./")
            }
        }
    }
}
