import Foundation

/// A folder of one end-to-end test with the file it runs (a topology or scenario); the test removes
/// it with `defer { folder.remove() }`.
struct ScratchFolder {
    let root: String
    /// The written file's path.
    let file: String

    init(_ name: String, file fileName: String, text: String) throws {
        root = NSTemporaryDirectory() + "faultline-e2e-\(name)-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        file = root + "/" + fileName
        try text.write(toFile: file, atomically: true, encoding: .utf8)
    }

    var runs: String { root + "/runs" }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}
