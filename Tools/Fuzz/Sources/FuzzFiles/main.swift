// libFuzzer target: the files a user writes. Any text given to the topology and scenario parsers
// either parses or comes back as an error that names the file and the field (or line) that was
// wrong; it never traps. Seeds: the outage library (Tools/fuzz.sh copies Topologies/*.toml).
import Formats

let path = "fuzz.toml"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    guard let text = String(validating: bytes, as: UTF8.self) else { return 0 }
    do {
        let scenario = try Scenario.parse(text, path: path)
        // What parsed is usable: names are unique and every step and expectation is within its bounds.
        let names = scenario.topology.nodes.map(\.name)
        precondition(Set(names).count == names.count, "two nodes share a name: \(names)")
        precondition(scenario.steps.count <= Scenario.stepsMax, "\(scenario.steps.count) steps")
        precondition(scenario.durationSeconds >= 1, "duration \(scenario.durationSeconds)")
    } catch {
        precondition(error.file == path && !error.field.isEmpty && !error.problem.isEmpty,
                     "an error that does not say where: \(error)")
    }
    return 0
}
