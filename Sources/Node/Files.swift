#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure at the file edge, naming the path and the operation.
public struct FileError: Error, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let code: Int32

    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(code)))"
    }
}

/// A thin POSIX file handle: append, positional read, fsync, truncate. Used for the durable store,
/// where every committed byte must be flushed before the node acts on it.
final class PosixFile {
    let path: String
    private(set) var fd: Int32

    init(path: String, flags: Int32, mode: mode_t = 0o600) throws {
        self.path = path
        fd = open(path, flags | O_CLOEXEC, mode)
        if fd < 0 { throw FileError(path: path, operation: "open", code: errno) }
    }

    deinit { if fd >= 0 { close(fd) } }

    func size() throws -> Int {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path: path, operation: "fstat", code: errno) }
        return Int(info.st_size)
    }

    func write(_ bytes: [UInt8]) throws {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, operation: "write", code: errno)
            }
            written += n
        }
    }

    func pwrite(_ bytes: [UInt8], at offset: Int) throws {
        let n = bytes.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress!, bytes.count, off_t(offset)) }
        if n != bytes.count { throw FileError(path: path, operation: "pwrite", code: errno) }
    }

    func read(count: Int, at offset: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, operation: "pread", code: errno)
            }
            if n == 0 { break }
            done += n
        }
        return Array(buffer.prefix(done))
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw FileError(path: path, operation: "fsync", code: errno) }
    }

    func truncate(to length: Int) throws {
        guard ftruncate(fd, off_t(length)) == 0 else { throw FileError(path: path, operation: "ftruncate", code: errno) }
    }
}

enum FileSystem {
    static func readAll(_ path: String) throws -> [UInt8] {
        let file = try PosixFile(path: path, flags: O_RDONLY)
        return try file.read(count: try file.size(), at: 0)
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw FileError(path: path, operation: "mkdir", code: errno)
        }
    }

    static func resolve(_ path: String, relativeTo base: String) -> String {
        path.hasPrefix("/") ? path : base + "/" + path
    }

    /// The folder part of a path ("." for a bare file name, "/" for a file at the root).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `text` without leading and trailing whitespace and newlines (key and token files).
    static func trimmed(_ text: String) -> String {
        String(text.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
