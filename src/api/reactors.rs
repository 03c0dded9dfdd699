//! The server's reactors: one single-threaded tokio runtime per core (`--io-threads`), each
//! serving the connections handed to it, as nginx's workers, Redis's I/O threads and
//! actix-web's workers do. The accept loop runs on the runtime that called
//! [`super::serve`], which is the first reactor; it hands each new connection to the next
//! reactor in turn, and the connection stays there for its life.
//!
//! Why not tokio's work-stealing runtime: on one core its scheduler (shared queues, atomic
//! task states, wake-ups that look for idle workers) cost about 0.3-0.5 µs a request, a
//! tenth of the server's user time per single event; a reactor of its own per thread pays
//! none of it (loadtest/README.md, "One reactor per core"). What it costs: a connection's
//! requests run on its own reactor only, so a reactor busy with one connection's long work
//! delays the other connections it holds; that work (selections, simulations, plans) runs
//! on the heavy pool, not on a reactor, and the event writer yields between slices.

use std::future::Future;
use std::io;
use std::thread::JoinHandle;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Most reactors `crv serve` runs (`--io-threads`).
pub const MAX_IO_THREADS: usize = 1024;

/// The default number of reactors: one per CPU this process may run on (its affinity mask
/// and CPU quota), at least one.
pub fn default_io_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |count| count.get().min(MAX_IO_THREADS))
}

/// The reactors beyond the caller's, and whose turn the next connection is.
#[derive(Debug)]
pub struct Reactors {
    others: Vec<Reactor>,
    /// The next connection's reactor: 0 the caller's, `i` `others[i - 1]`.
    turn: usize,
}

/// A reactor on a thread of its own, running until told to stop.
#[derive(Debug)]
struct Reactor {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Reactors {
    /// `count` reactors (>= 1): the caller's runtime and `count - 1` threads, each running a
    /// single-threaded runtime (I/O and timers) until [`Reactors::stop`].
    pub fn start(count: usize) -> io::Result<Reactors> {
        let mut others = Vec::with_capacity(count.saturating_sub(1));
        for index in 1..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("crv-reactor-{index}"))
                .spawn(move || {
                    // Spawned connections run while the thread is inside `block_on`; dropping
                    // the runtime then cancels what is left and waits for its blocking tasks.
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
            others.push(Reactor {
                handle,
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(Reactors { others, turn: 0 })
    }

    /// How many reactors serve connections.
    pub fn count(&self) -> usize {
        self.others.len() + 1
    }

    /// Runs `serve` over the accepted `stream` on the next reactor in turn. A stream handed
    /// to another reactor moves to that reactor's I/O driver; one that cannot (a descriptor
    /// the driver refuses) is dropped, which closes the connection, and logged.
    pub fn spawn<S, F>(&mut self, stream: TcpStream, serve: S)
    where
        S: FnOnce(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let turn = self.turn;
        self.turn = (turn + 1) % self.count();
        let Some(reactor) = turn.checked_sub(1).map(|at| &self.others[at]) else {
            tokio::spawn(serve(stream));
            return;
        };
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "could not hand a connection to a reactor");
                return;
            }
        };
        reactor.handle.spawn(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream).await,
                Err(error) => tracing::warn!(%error, "a reactor could not take a connection"),
            }
        });
    }

    /// Stops the other reactors, cancelling what they still run (connections past the drain
    /// timeout), and waits for their threads, off the caller's reactor so that its own tasks
    /// (which a blocking task of another reactor may wait for) go on meanwhile.
    pub async fn stop(mut self) {
        let threads: Vec<JoinHandle<()>> =
            self.others.iter_mut().filter_map(Reactor::signal).collect();
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }
}

impl Reactor {
    /// Tells the reactor to stop; its thread, once (the second call gives `None`).
    fn signal(&mut self) -> Option<JoinHandle<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread.take()
    }
}

impl Drop for Reactors {
    /// Reactors not stopped (the accept loop ended by an error) are told to stop; their
    /// threads end on their own.
    fn drop(&mut self) {
        for reactor in &mut self.others {
            reactor.signal();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Connections handed out in turn run on every reactor, once each per round.
    #[tokio::test]
    async fn connections_go_to_every_reactor_in_turn() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut reactors = Reactors::start(3).unwrap();
        assert_eq!(reactors.count(), 3);
        let (seen, mut threads) = tokio::sync::mpsc::unbounded_channel();
        let mut clients = Vec::new();
        for _ in 0..6 {
            clients.push(std::net::TcpStream::connect(addr).unwrap());
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            reactors.spawn(stream, move |stream| async move {
                // The stream works on the reactor it moved to.
                stream.writable().await.unwrap();
                stream.try_write(b"x").unwrap();
                let name = std::thread::current().name().map(str::to_owned);
                seen.send((name, std::thread::current().id())).unwrap();
            });
        }
        let mut names = Vec::new();
        let mut ids = HashSet::new();
        for _ in 0..6 {
            let (name, id) = threads.recv().await.unwrap();
            names.push(name);
            ids.insert(id);
        }
        assert_eq!(ids.len(), 3, "{names:?}");
        for reactor in ["crv-reactor-1", "crv-reactor-2"] {
            let on = names
                .iter()
                .filter(|n| n.as_deref() == Some(reactor))
                .count();
            assert_eq!(on, 2, "{reactor}: {names:?}");
        }
        for mut client in clients {
            let mut byte = [0u8; 1];
            std::io::Read::read_exact(&mut client, &mut byte).unwrap();
            assert_eq!(&byte, b"x");
        }
        reactors.stop().await;
    }
}
