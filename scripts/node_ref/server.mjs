// The reference server of scripts/bench_fanout.py: socket.io 4 with its defaults,
// and Threadroom's room semantics for the two events the load uses.  A client
// `register`s into a room; a `message` goes to everyone else in that room and is
// acknowledged with its id.  No assistant, no storage: the floor a socket.io
// deployment pays per delivery.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] || 0);
const http = createServer();
// socket.io's defaults (perMessageDeflate off), as a deployment would have them.
const io = new Server(http);

io.on("connection", (socket) => {
  socket.on("register", (data, ack) => {
    const room = String(data?.room || "lobby");
    socket.data.room = room;
    socket.data.person = { user_id: data?.user_id, name: data?.name };
    socket.join(room);
    socket.emit("welcome", { ...socket.data.person, room });
    socket.to(room).emit("join", socket.data.person);
    if (typeof ack === "function") ack({ ok: true, ...socket.data.person });
  });
  // The load sets rooms to answer only when addressed; there is no assistant here.
  socket.on("room-settings", (data, ack) => {
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("message", (data, ack) => {
    const room = socket.data.room;
    if (!room) {
      if (typeof ack === "function") ack({ ok: false, error: "register first" });
      return;
    }
    const message = {
      id: String(data?.id || ""),
      user_id: socket.data.person.user_id,
      name: socket.data.person.name,
      content: String(data?.content || ""),
      role: "user",
      created_at: Date.now(),
    };
    socket.to(room).emit("message", message);
    if (typeof ack === "function") ack({ ok: true, id: message.id });
  });
});

http.listen(port, "127.0.0.1", () => {
  // The parent reads the port from this line.
  console.log(`listening ${http.address().port}`);
});
