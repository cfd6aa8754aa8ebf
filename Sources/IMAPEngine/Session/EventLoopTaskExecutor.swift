import NIOCore

/// Runs a connection's tasks on its channel's event loop.
///
/// On the default executor, each command crossed threads four times: the input from the connection's loop to a
/// pool thread, each store answer from the database connection's loop to a pool thread, and the response back to the
/// connection's loop. Here the input, the session's work and its writes stay on one thread, and only the store's
/// answers cross (or none, when the database connection shares the loop). A session's work is synchronous between
/// its suspensions, as it was on the pool's threads, so nothing here blocks a loop that did not block a pool thread.
public final class EventLoopTaskExecutor: TaskExecutor {
    private let loop: any EventLoop

    public init(_ loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
