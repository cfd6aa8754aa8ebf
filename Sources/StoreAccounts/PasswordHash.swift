import CCrypt
import Foundation

/// Password hashes of store accounts (virtual users), through libxcrypt's crypt(3) (DESIGN.md §5).
///
/// New hashes are yescrypt (`$y$`, Debian's default for /etc/shadow). Accepted as they are: sha512-crypt (`$6$`),
/// sha256-crypt (`$5$`), bcrypt (`$2b$`/`$2y$`/`$2a$`), md5-crypt (`$1$`) and Dovecot's prefixed forms
/// (`{SHA512-CRYPT}$6$…`, `{BLF-CRYPT}$2y$…`, `{CRYPT}…`), so a Dovecot passwd-file migrates without resetting
/// passwords. crypt(3) is CPU-bound (tens of milliseconds for yescrypt): callers run it off the event loops.
public enum PasswordHash {
    /// Dovecot scheme prefixes whose payload is a crypt(3) string.
    static let cryptSchemes = [
        "{CRYPT}", "{SHA512-CRYPT}", "{SHA256-CRYPT}", "{BLF-CRYPT}", "{MD5-CRYPT}", "{YESCRYPT}",
    ]

    public enum HashError: Error, CustomStringConvertible {
        case unsupported(String)
        case failed
        public var description: String {
            switch self {
            case .unsupported(let reason): "unsupported password hash: \(reason)"
            case .failed: "crypt(3) failed to hash the password"
            }
        }
    }

    /// A new yescrypt hash of `password`.
    public static func hash(_ password: String) throws(HashError) -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard crypt_gensalt_rn("$y$", 0, nil, 0, &setting, Int32(setting.count)) != nil else { throw .failed }
        guard let hashed = crypt(password, setting: setting), !hashed.hasPrefix("*") else { throw .failed }
        return hashed
    }

    /// The crypt(3) string inside a stored hash (Dovecot's `{SCHEME}` prefix removed), or why it is not usable.
    /// Checks that libxcrypt knows the method by hashing a probe: as costly as a login, so only for admin input.
    public static func cryptString(_ stored: String) throws(HashError) -> String {
        let value = try cryptPayload(stored)
        // libxcrypt answers a string starting with "*" for settings it does not know.
        guard let probe = crypt("probe", setting: Array(value.utf8CString)), !probe.hasPrefix("*") else {
            throw .unsupported("libxcrypt does not know the hash method of \(value.prefix(4))…")
        }
        return value
    }

    /// The crypt(3) string of a stored hash, checked for its form only.
    static func cryptPayload(_ stored: String) throws(HashError) -> String {
        var value = stored.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("{") {
            guard let scheme = cryptSchemes.first(where: { value.uppercased().hasPrefix($0) }) else {
                let name = value.prefix { $0 != "}" } + "}"
                throw .unsupported("scheme \(name) is not a crypt(3) scheme (use SHA512-CRYPT, BLF-CRYPT or CRYPT)")
            }
            value.removeFirst(scheme.count)
        }
        guard value.hasPrefix("$"), value.count >= 13, !value.contains(":"), !value.contains("\n") else {
            throw .unsupported("expected a crypt(3) hash such as $y$…, $6$… or $2y$…")
        }
        return value
    }

    /// Whether `password` matches `stored`: one crypt(3) call (an unknown method answers "*…", which cannot
    /// match). Compares in constant time; an unusable hash never matches.
    public static func verify(_ password: String, against stored: String) -> Bool {
        guard let setting = try? cryptPayload(stored),
            let computed = crypt(password, setting: Array(setting.utf8CString))
        else { return false }
        let a = Array(computed.utf8)
        let b = Array(setting.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    /// crypt_rn with its own scratch area (thread-safe); nil on error.
    private static func crypt(_ password: String, setting: [CChar]) -> String? {
        let size = MemoryLayout<crypt_data>.size
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        scratch.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        defer {
            scratch.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            scratch.deallocate()
        }
        guard let result = crypt_rn(password, setting, scratch, Int32(size)) else { return nil }
        return String(cString: result)
    }
}
