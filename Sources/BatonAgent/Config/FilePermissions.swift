import BatonProtocol
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The check ssh makes of its keys and configuration, for the files that decide what
/// this host trusts and runs. Whoever can write the configuration, the trust policy, a
/// trusted public key, the fleet CA or the agent's certificate can point the agent at
/// their own keys; whoever can read the agent's TLS key can pose as this host. The
/// systemd unit makes `/etc/baton` 0700, but the agent may be run without it.
enum FilePermissions {
    enum Kind {
        /// Others may read it, never write it.
        case trusted
        /// Others may neither read nor write it.
        case secret
    }

    /// Throws `insecure_permissions` when group or others can write `path` (or, for a
    /// secret, read it), naming the file and the `chmod` that fixes it. A file that does
    /// not exist passes: reading it reports that better.
    static func check(_ path: String, what: String, _ kind: Kind) throws(ConfigurationError) {
        var st = stat()
        // stat, not lstat: what matters is the file a symlink leads to.
        guard stat(path, &st) == 0 else { return }
        let mode = st.st_mode & 0o7777
        let forbidden: mode_t = kind == .secret ? 0o077 : 0o022
        guard mode & forbidden != 0 else { return }
        let octal = "0" + String(mode, radix: 8)
        switch kind {
        case .trusted:
            throw ConfigurationError(
                .insecurePermissions,
                "the \(what) is writable by \(mode & 0o020 != 0 ? (mode & 0o002 != 0 ? "group and others" : "its group") : "others") (mode \(octal)), so someone other than its owner could change what this host trusts; run `chmod go-w \(path)`",
                file: path)
        case .secret:
            throw ConfigurationError(
                .insecurePermissions,
                "the \(what) is open to \(mode & 0o070 != 0 ? (mode & 0o007 != 0 ? "group and others" : "its group") : "others") (mode \(octal)); a private key must be readable by its owner only: run `chmod 600 \(path)`",
                file: path)
        }
    }
}
