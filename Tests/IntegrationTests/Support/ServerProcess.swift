import Foundation

/// A built `mailhost` binary running as a child process, its standard error captured to a file.
final class ServerProcess {
    let process = Process()
    let logURL: URL
    private(set) var port: Int = 0

    /// The directory holding the built executables: beside the test bundle, or `.build/debug` of the package.
    static var binaryDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["MAILHOST_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if FileManager.default.isExecutableFile(atPath: bundleDirectory.appendingPathComponent("mailhost").path) {
            return bundleDirectory
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug")
    }

    /// A built executable by name, or any program by absolute path.
    static func executable(_ name: String) -> URL {
        name.hasPrefix("/") ? URL(fileURLWithPath: name) : binaryDirectory.appendingPathComponent(name)
    }

    init(_ arguments: [String], environment: [String: String] = [:], binary: String = "mailhost") throws {
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("mailhost-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.executableURL = Self.executable(binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardError = try FileHandle(forWritingTo: logURL)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// Whether the log comes to contain `text` within `timeout`: for lines written by a task that may run after the
    /// client has already seen the effect (a connection closed on the event loop, logged by the connection's task).
    func logEventuallyContains(_ text: String, timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.contains(text) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return log.contains(text)
    }

    /// Waits for `listening KIND=HOST:PORT` (kind `imap`, `imaps`, `imap-proxy` or `metrics`) and returns the port.
    func waitUntilListening(_ kind: String = "imap", timeout: Duration = .seconds(30)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let range = log.range(of: "listening \(kind)=") {
                let rest = log[range.upperBound...]
                let address = rest.prefix { !$0.isWhitespace }
                if let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) {
                    if kind == "imap" { self.port = port }
                    return port
                }
            }
            if !process.isRunning { throw TestFailure("mailhost exited early: \(log)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("mailhost did not start listening (\(kind)): \(log)")
    }

    /// Sends a signal (SIGTERM, SIGHUP).
    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to exit and returns its status.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw TestFailure("mailhost did not exit: \(log)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    func terminate() {
        if process.isRunning { process.terminate() }
    }

    deinit {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(at: logURL)
    }
}

/// The Prometheus text of a `mailhost --metrics` listener, as a map from series (`name{labels}`) to value.
func scrapeMetrics(port: Int) async throws -> [String: Double] {
    let client = try await IMAPTestClient.connect(port: port)
    defer { Task { await client.close() } }
    try await client.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    var length = 0
    while case let line = try await client.readLine(), !line.isEmpty {
        if line.lowercased().hasPrefix("content-length:") {
            length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
    }
    let text = String(decoding: try await client.readBytes(length), as: UTF8.self)
    var series: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let parts = line.split(separator: " ")
        if parts.count == 2, let value = Double(parts[1].trimmingCharacters(in: .whitespaces)) {
            series[String(parts[0])] = value
        }
    }
    return series
}
