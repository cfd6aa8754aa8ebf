import Foundation

/// Runs the built `mailadmin` (or any executable) and collects its exit status and output.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

func runTool(
    _ executable: URL, _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]
) async throws -> CommandResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-tool-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outURL = directory.appendingPathComponent("out")
    let errURL = directory.appendingPathComponent("err")
    let inURL = directory.appendingPathComponent("in")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: inURL.path, contents: Data((stdin ?? "").utf8))
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    process.standardInput = try FileHandle(forReadingFrom: inURL)
    try process.run()
    let deadline = ContinuousClock.now + .seconds(300)
    while process.isRunning {
        guard ContinuousClock.now < deadline else {
            process.terminate()
            throw TestFailure("\(executable.lastPathComponent) \(arguments) did not finish")
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    return CommandResult(
        status: process.terminationStatus,
        stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}

/// `mailadmin --storage SETTING …`.
func mailadmin(_ storage: TestStorage, _ arguments: String..., stdin: String? = nil) async throws -> CommandResult {
    try await runTool(
        ServerProcess.executable("mailadmin"), ["--storage", storage.setting] + arguments, stdin: stdin)
}

/// Runs a Python script (the standard library's imaplib is the "real client library" of these tests).
func python(_ script: String, environment: [String: String] = [:]) async throws -> CommandResult {
    try await runTool(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script], environment: environment)
}
