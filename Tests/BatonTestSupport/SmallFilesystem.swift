import Foundation

/// A small tmpfs, for tests of a real ENOSPC. Mounting one needs root (or CAP_SYS_ADMIN);
/// where that is missing the tests that need it are disabled, and say why, instead of
/// passing without having run.
public enum SmallFilesystem {
    /// Whether a tmpfs can be mounted here: tried once, on a scratch directory.
    public static let canMount: Bool = {
        guard let scratch = try? TemporaryDirectory(prefix: "baton-tmpfs-probe") else { return false }
        defer { scratch.remove() }
        guard let mounted = try? ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", scratch.path]),
            mounted.status == 0
        else { return false }
        _ = try? ProcessRunner.run("/bin/umount", ["-l", scratch.path])
        return true
    }()

    /// Mounts a tmpfs of `size` (as mount(8) spells it: `2m`) on `path`.
    public static func mount(_ path: String, size: String) throws {
        let mounted = try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
        guard mounted.status == 0 else {
            throw TestSupportError("cannot mount a tmpfs on \(path): \(mounted.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    public static func unmount(_ path: String) {
        _ = try? ProcessRunner.run("/bin/umount", ["-l", path])
    }
}
