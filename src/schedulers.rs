//! The schedulers of the actors crate as reactors of the loop core:
//! `MioScheduler` behind RLoop, `TokioScheduler` behind TokioLoop. Both
//! have the same pull-style API, so the trait forwards to it unchanged.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use actors::{Actors, MioScheduler, TokioScheduler, TokioWaker};

use crate::reactor::*;

struct MioWake(Arc<mio::Waker>);

impl Wake for MioWake {
    fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}

struct TokioWake(Arc<TokioWaker>);

impl Wake for TokioWake {
    fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}

macro_rules! reactor_for {
    ($scheduler:ty, $wake:ident $(, $extra:item)* $(,)?) => {
        impl Reactor for $scheduler {
            $($extra)*
            fn turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Ready>) -> io::Result<()> {
                <$scheduler>::turn(self, timeout, out)
            }
            fn waker(&self) -> Arc<dyn Wake> {
                Arc::new($wake(<$scheduler>::waker(self)))
            }
            fn signal_fd(&mut self) -> io::Result<RawFd> {
                <$scheduler>::signal_fd(self)
            }
            fn watch_fd(&mut self, fd: RawFd, read: bool, write: bool) -> io::Result<()> {
                <$scheduler>::watch_fd(self, fd, read, write)
            }
            fn watch_fd_idle(
                &mut self,
                fd: RawFd,
                read: bool,
                write: bool,
                same_file: bool,
            ) -> io::Result<()> {
                <$scheduler>::watch_fd_idle(self, fd, read, write, same_file)
            }
            fn add_connection(&mut self, stream: Stream) -> io::Result<ConnId> {
                <$scheduler>::add_connection(self, stream)
            }
            fn read(&mut self, id: ConnId, out: &mut Vec<Event>) -> ReadResult<'_> {
                <$scheduler as Actors>::read(self, id, out)
            }
            fn read_at_most(
                &mut self,
                id: ConnId,
                max: usize,
                out: &mut Vec<Event>,
            ) -> ReadResult<'_> {
                <$scheduler as Actors>::read_at_most(self, id, max, out)
            }
            fn read_into(&mut self, id: ConnId, buf: &mut [u8], out: &mut Vec<Event>) -> ReadCount {
                <$scheduler as Actors>::read_into(self, id, buf, out)
            }
            fn writelines(
                &mut self,
                id: ConnId,
                chunks: &[&[u8]],
                out: &mut Vec<Event>,
            ) -> Result<(), ActorError> {
                <$scheduler as Actors>::writelines(self, id, chunks, out)
            }
            fn command(
                &mut self,
                id: ConnId,
                cmd: Command,
                out: &mut Vec<Event>,
            ) -> Result<(), ActorError> {
                <$scheduler as Actors>::command(self, id, cmd, out)
            }
            fn on_writable(&mut self, id: ConnId, out: &mut Vec<Event>) {
                <$scheduler as Actors>::on_writable(self, id, out)
            }
            fn sendfile(
                &mut self,
                id: ConnId,
                segment: FileSegment,
                out: &mut Vec<Event>,
            ) -> Result<(), ActorError> {
                <$scheduler as Actors>::sendfile(self, id, segment, out)
            }
            fn cancel_sendfile(&mut self, id: ConnId, out: &mut Vec<Event>) -> Option<u64> {
                <$scheduler as Actors>::cancel_sendfile(self, id, out)
            }
            fn is_reading(&self, id: ConnId) -> bool {
                <$scheduler as Actors>::is_reading(self, id)
            }
            fn write_buffer_size(&self, id: ConnId) -> Option<usize> {
                <$scheduler as Actors>::write_buffer_size(self, id)
            }
            fn write_buffer_limits(&self, id: ConnId) -> Option<(usize, usize)> {
                <$scheduler as Actors>::write_buffer_limits(self, id)
            }
            fn info(&self, id: ConnId) -> Option<ConnInfo> {
                <$scheduler as Actors>::info(self, id)
            }
            fn set_fault(&mut self, id: ConnId, plan: FaultPlan) -> bool {
                <$scheduler as Actors>::set_fault(self, id, plan)
            }
            fn add_toxic_plans(
                &mut self,
                id: ConnId,
                plans: &[Arc<ToxicPlan>],
                out: &mut Vec<Event>,
            ) -> bool {
                <$scheduler as Actors>::add_toxic_plans(self, id, plans, out)
            }
            fn wake_toxics(&mut self) {
                <$scheduler>::wake_toxics(self)
            }
            fn io_counter(&self, id: ConnId) -> Option<Arc<IoCounts>> {
                <$scheduler as Actors>::io_counter(self, id)
            }
            fn close_all(&mut self, out: &mut Vec<(ConnId, Event)>) {
                <$scheduler>::close_all(self, out)
            }
            fn add_listener(&mut self, listener: Listener) -> io::Result<ListenerId> {
                <$scheduler>::add_listener(self, listener)
            }
            fn accept(&mut self, id: ListenerId) -> io::Result<Option<(Stream, Addr)>> {
                <$scheduler>::accept(self, id)
            }
            fn pause_listener(&mut self, id: ListenerId) -> io::Result<()> {
                <$scheduler>::pause_listener(self, id)
            }
            fn resume_listener(&mut self, id: ListenerId) -> io::Result<()> {
                <$scheduler>::resume_listener(self, id)
            }
            fn remove_listener(&mut self, id: ListenerId) -> Option<Listener> {
                <$scheduler>::remove_listener(self, id)
            }
        }
    };
}

reactor_for!(MioScheduler, MioWake);
reactor_for!(
    TokioScheduler,
    TokioWake,
    fn driver(&self) -> Option<Driver> {
        Some(TokioScheduler::driver(self))
    },
    fn driven(&mut self) -> Option<&mut dyn DrivenTurns> {
        Some(self)
    }
);

impl DrivenTurns for TokioScheduler {
    fn begin_turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Ready>) -> io::Result<()> {
        TokioScheduler::begin_turn(self, timeout, out)
    }
    fn poll_turn(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        TokioScheduler::poll_turn(self, cx)
    }
    fn end_turn(&mut self, out: &mut Vec<Ready>) {
        TokioScheduler::end_turn(self, out)
    }
}
