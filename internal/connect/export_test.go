package connect

// Kill drops c without FIN, as if the device vanished.
func (c *Conn) Kill() { c.kill() }
