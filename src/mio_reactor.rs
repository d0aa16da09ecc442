//! RLoop's reactor: the single-threaded mio scheduler of the actors crate.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use actors::MioScheduler;

use crate::reactor::*;

struct MioWake(Arc<mio::Waker>);

impl Wake for MioWake {
    fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}

impl Reactor for MioScheduler {
    fn turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Ready>) -> io::Result<()> {
        MioScheduler::turn(self, timeout, out)
    }
    fn waker(&self) -> Arc<dyn Wake> {
        Arc::new(MioWake(MioScheduler::waker(self)))
    }
    fn watch_fd(&mut self, fd: RawFd, read: bool, write: bool) -> io::Result<()> {
        MioScheduler::watch_fd(self, fd, read, write)
    }
    fn add_connection(&mut self, stream: Stream) -> io::Result<ConnId> {
        MioScheduler::add_connection(self, stream)
    }
    fn read(&mut self, id: ConnId, out: &mut Vec<Event>) -> ReadResult<'_> {
        MioScheduler::read(self, id, out)
    }
    fn read_into(&mut self, id: ConnId, buf: &mut [u8], out: &mut Vec<Event>) -> ReadCount {
        MioScheduler::read_into(self, id, buf, out)
    }
    fn writelines(
        &mut self,
        id: ConnId,
        chunks: &[&[u8]],
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError> {
        MioScheduler::writelines(self, id, chunks, out)
    }
    fn command(
        &mut self,
        id: ConnId,
        cmd: Command,
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError> {
        MioScheduler::command(self, id, cmd, out)
    }
    fn on_writable(&mut self, id: ConnId, out: &mut Vec<Event>) {
        MioScheduler::on_writable(self, id, out)
    }
    fn is_reading(&self, id: ConnId) -> bool {
        MioScheduler::is_reading(self, id)
    }
    fn write_buffer_size(&self, id: ConnId) -> Option<usize> {
        MioScheduler::write_buffer_size(self, id)
    }
    fn write_buffer_limits(&self, id: ConnId) -> Option<(usize, usize)> {
        MioScheduler::write_buffer_limits(self, id)
    }
    fn info(&self, id: ConnId) -> Option<ConnInfo> {
        MioScheduler::info(self, id)
    }
    fn set_fault(&mut self, id: ConnId, plan: FaultPlan) -> bool {
        MioScheduler::set_fault(self, id, plan)
    }
    fn close_all(&mut self, out: &mut Vec<(ConnId, Event)>) {
        MioScheduler::close_all(self, out)
    }
    fn add_listener(&mut self, listener: Listener) -> io::Result<ListenerId> {
        MioScheduler::add_listener(self, listener)
    }
    fn accept(&mut self, id: ListenerId) -> io::Result<Option<(Stream, Addr)>> {
        MioScheduler::accept(self, id)
    }
    fn pause_listener(&mut self, id: ListenerId) -> io::Result<()> {
        MioScheduler::pause_listener(self, id)
    }
    fn resume_listener(&mut self, id: ListenerId) -> io::Result<()> {
        MioScheduler::resume_listener(self, id)
    }
    fn remove_listener(&mut self, id: ListenerId) -> Option<Listener> {
        MioScheduler::remove_listener(self, id)
    }
}
