/// DNS host names as a config or an export may give them (RFC 1123: labels of letters, digits and
/// hyphens, 1-63 characters each, not starting or ending with a hyphen; 253 characters in all).
public enum HostName {
    /// Why `name` is not a usable host name, or nil.
    public static func problem(_ name: String) -> String? {
        guard !name.isEmpty else { return "empty host name" }
        guard name.utf8.count <= 253 else { return "'\(name)' is longer than 253 characters" }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { return "'\(name)' has an empty label" }
            guard label.utf8.count <= 63 else { return "'\(name)': label '\(label)' is longer than 63 characters" }
            guard label.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 45 }),
                  label.first != "-", label.last != "-" else {
                return "'\(name)': label '\(label)' is not letters, digits and inner hyphens"
            }
        }
        return nil
    }
}
