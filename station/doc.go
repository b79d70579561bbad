// Package station is the physical line: each station's label printer, reached over
// raw TCP (port 9100), a serial line, a USB printer class device, a spool folder or
// not at all; the printer's status in the operator's words (ZPL ~HS, TSPL ESC !?);
// and the worker that drains the station's durable label-job queue to the printer,
// oldest first, never printing a label twice by itself.
//
// Delivery has three outcomes. A job the printer took whole is printed. A job of
// which no byte left the appliance (printer off, cable out, device missing) goes
// back to the queue and is retried with capped backoff, forever, in order. A job
// whose delivery broke off after some bytes were written may have printed: it is
// marked uncertain and left for an operator to reprint or not.
package station
