import BatonArchive
import BatonTestSupport
import Foundation
import Testing

/// Member names: each rule refused with its code, checked on the name after pax and GNU
/// long names are applied, with nothing written outside the staging directory.
@Suite struct NameRefusalTests {
    @Test func absoluteNames() throws {
        try expectRefusal(.absolutePath) { sandbox in tar { $0.file("\(sandbox.outside)/\(sandbox.marker)", "owned") } }
        try expectRefusal(.absolutePath) { sandbox in tar { $0.file("/tmp/\(sandbox.marker)", "owned") } }
        try expectRefusal(.absolutePath) { _ in tar { $0.directory("/") } }
        try expectRefusal(.absolutePath) { sandbox in tar { $0.directory("//tmp/\(sandbox.marker)/") } }
    }

    @Test func absoluteNameAfterAHarmlessOne() throws {
        let errors = try expectRefusal(.absolutePath) { sandbox in
            tar {
                $0.file("ok.txt", "fine")
                $0.file("\(sandbox.outside)/\(sandbox.marker)", "owned")
            }
        }
        for error in errors {
            #expect(error.entry?.contains("/outside/baton-escape-") == true)
            #expect(error.message.contains("/outside/baton-escape-"))
        }
    }

    @Test(arguments: [
        "..", "../", "../outside/keep.txt", "../MARKER", "../../MARKER", "a/../../MARKER", "./../MARKER",
        "a/b/../../../MARKER", "a/..", "a/../b", "./a/./../MARKER",
    ])
    func traversal(_ name: String) throws {
        try expectRefusal(.pathTraversal) { sandbox in
            tar { $0.file(name.replacingOccurrences(of: "MARKER", with: sandbox.marker), "owned") }
        }
    }

    @Test func traversalInADirectoryEntry() throws {
        try expectRefusal(.pathTraversal) { sandbox in tar { $0.directory("../\(sandbox.marker)/") } }
    }

    /// The name checked is the pax `path`, not the harmless ustar name under it.
    @Test func paxPathIsChecked() throws {
        try expectRefusal(.pathTraversal) { sandbox in
            tar {
                $0.pax([("path", "../\(sandbox.marker)")])
                $0.file("harmless", "owned")
            }
        }
        try expectRefusal(.absolutePath) { sandbox in
            tar {
                $0.pax([("path", "\(sandbox.outside)/\(sandbox.marker)")])
                $0.file("harmless", "owned")
            }
        }
    }

    /// A global pax path applies to every member that follows.
    @Test func globalPaxPathIsChecked() throws {
        try expectRefusal(.pathTraversal) { sandbox in
            tar {
                $0.pax([("path", "../\(sandbox.marker)")], global: true)
                $0.file("harmless", "owned")
            }
        }
    }

    @Test func gnuLongNameIsChecked() throws {
        try expectRefusal(.pathTraversal) { sandbox in
            tar {
                $0.gnuLongName("../" + String(repeating: "x", count: 120) + "/../\(sandbox.marker)")
                $0.file("harmless", "owned")
            }
        }
        try expectRefusal(.absolutePath) { sandbox in
            tar {
                $0.gnuLongName("\(sandbox.outside)/\(sandbox.marker)")
                $0.file("harmless", "owned")
            }
        }
    }

    /// The ustar prefix field is part of the name.
    @Test func ustarPrefixIsChecked() throws {
        try expectRefusal(.pathTraversal) { sandbox in
            tar {
                var header = TarBuilder.Header("\(sandbox.marker)", size: 5)
                header.prefix = Array("..".utf8)
                $0.append(header)
                $0.append(data: Array("owned".utf8))
            }
        }
    }

    @Test func emptyNames() throws {
        try expectRefusal(.emptyName) { _ in tar { $0.file("", "no name") } }
        // `./` is the release root: fine for a directory, not for a file.
        try expectRefusal(.emptyName) { _ in tar { $0.file("./", "root as a file") } }
        try expectRefusal(.emptyName) { _ in tar { $0.symlink(".", to: "x") } }
        try expectRefusal(.emptyName) { _ in
            tar {
                $0.gnuLongName("")
                $0.file("", "still no name")
            }
        }
    }

    @Test func nulInNames() throws {
        try expectRefusal(.nulInName) { _ in
            tar {
                $0.pax(key: "path", bytes: Array("safe.txt".utf8) + [0] + Array("../../x".utf8))
                $0.file("placeholder", "x")
            }
        }
        try expectRefusal(.nulInName) { sandbox in
            tar {
                $0.gnuLongName(Array("a".utf8) + [0] + Array("/../../\(sandbox.marker)".utf8))
                $0.file("placeholder", "x")
            }
        }
        try expectRefusal(.nulInName) { _ in
            tar {
                $0.pax(key: "linkpath", bytes: Array("target".utf8) + [0] + Array("/../..".utf8))
                $0.symlink("link", to: "target")
            }
        }
    }

    @Test func duplicateNames() throws {
        try expectRefusal(.duplicateEntry) { _ in
            tar {
                $0.file("a.txt", "one")
                $0.file("a.txt", "two")
            }
        }
        // The same name spelt differently is still the same name.
        try expectRefusal(.duplicateEntry) { _ in
            tar {
                $0.file("dir/a.txt", "one")
                $0.file("./dir//a.txt", "two")
            }
        }
        try expectRefusal(.duplicateEntry) { _ in
            tar {
                $0.directory("d/")
                $0.directory("d/")
            }
        }
        try expectRefusal(.duplicateEntry) { _ in
            tar {
                $0.directory("d/")
                $0.file("d", "a file where a directory is")
            }
        }
        // A file, then a symlink of the same name: the classic way to swap a file for a link.
        try expectRefusal(.duplicateEntry) { _ in
            tar {
                $0.file("config", "one")
                $0.symlink("config", to: "other")
            }
        }
        // A directory created implicitly as a parent cannot become a file.
        try expectRefusal(.duplicateEntry) { _ in
            tar {
                $0.file("d/inner.txt", "x")
                $0.file("d", "not a directory")
            }
        }
        try expectRefusal(.duplicateEntry) { _ in
            tar {
                $0.directory("./")
                $0.directory("./")
            }
        }
        try expectRefusal(.duplicateEntry) { _ in
            tar {
                $0.file("a.txt", "one")
                $0.hardLink("a.txt", to: "a.txt")
            }
        }
    }

    @Test func namesTooLong() throws {
        let component = String(repeating: "c", count: 256)
        try expectRefusal(.nameTooLong) { _ in
            tar {
                $0.pax([("path", "dir/\(component)")])
                $0.file("placeholder", "x")
            }
        }
        // 17 components of 250 bytes: every component is fine, the whole is over 4096.
        let long = Array(repeating: String(repeating: "d", count: 250), count: 17).joined(separator: "/")
        try expectRefusal(.nameTooLong) { _ in
            tar {
                $0.pax([("path", long)])
                $0.file("placeholder", "x")
            }
        }
        var limits = ExtractionLimits()
        limits.maxNameLength = 20
        try expectRefusal(.nameTooLong, limits: limits) { _ in tar { $0.file("a/bcdefghij/klmnopqrstu", "x") } }
        // A GNU long name bigger than any name can be is refused before it is buffered.
        try expectRefusal(.nameTooLong) { _ in
            tar {
                $0.gnuLongName(String(repeating: "n", count: 70_000))
                $0.file("placeholder", "x")
            }
        }
        // Symlink targets are bounded too.
        try expectRefusal(.nameTooLong) { _ in
            tar {
                $0.pax([("linkpath", Array(repeating: "a", count: 2100).joined(separator: "/"))])
                $0.symlink("link", to: "placeholder")
            }
        }
    }

    @Test func pathsTooDeep() throws {
        let deep = Array(repeating: "d", count: 65).joined(separator: "/")
        try expectRefusal(.pathTooDeep) { _ in
            tar {
                $0.pax([("path", deep)])
                $0.file("placeholder", "x")
            }
        }
        var limits = ExtractionLimits()
        limits.maxDepth = 3
        try expectRefusal(.pathTooDeep, limits: limits) { _ in tar { $0.directory("a/b/c/d/") } }
    }

    @Test func parentIsAFile() throws {
        try expectRefusal(.parentNotDirectory) { _ in
            tar {
                $0.file("f", "a file")
                $0.file("f/inner", "x")
            }
        }
    }

    /// The classic two-step escape: a symlink to a directory, then a member written through it.
    @Test func parentIsASymlink() throws {
        try expectRefusal(.parentNotDirectory) { _ in
            tar {
                $0.directory("real/")
                $0.symlink("link", to: "real")
                $0.file("link/planted", "x")
            }
        }
        try expectRefusal(.parentNotDirectory) { _ in
            tar {
                $0.directory("real/")
                $0.symlink("link", to: "real")
                $0.directory("link/sub/")
            }
        }
        try expectRefusal(.parentNotDirectory) { _ in
            tar {
                $0.file("real.txt", "x")
                $0.directory("real/")
                $0.symlink("real/link", to: ".")
                $0.hardLink("real/link/again.txt", to: "real.txt")
            }
        }
    }

    /// Nothing lands behind the symlink, even inside the release.
    @Test func nothingWrittenThroughASymlinkedParent() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = tar {
            $0.directory("real/")
            $0.symlink("link", to: "real")
            $0.file("link/planted", "x")
        }
        let result = sandbox.extract(tar: archive)
        #expect(throws: ExtractionError.self) { try result.get() }
        #expect(sandbox.stagedPaths() == ["link", "real"])
        #expect(sandbox.nothingOutside())
    }
}
