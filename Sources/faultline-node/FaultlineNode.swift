import ArgumentParser
import Node

/// One Faultline node process. `faultline up` starts these; a user rarely runs one by hand.
@main
struct FaultlineNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faultline-node", abstract: "Run one Faultline node from its folder's node.json.")

    @Option(name: .long, help: "Path to the node's node.json (written by `faultline up`).")
    var config: String

    func run() async throws {
        do {
            try await NodeMain.run(configPath: config)
        } catch let error as ConfigError {
            FileHandleStderr.write("faultline-node: \(error)\n")
            throw ExitCode(2)
        }
    }
}
