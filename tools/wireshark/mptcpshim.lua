--
-- mptcpshim.lua: a Wireshark and tshark dissector for mptcpshim's in-band
-- records.
--
-- mptcpshim carries MPTCP's options inside each subflow's TCP byte stream.
-- Each direction of a subflow is a sequence of records:
--
--   offset  size  field
--   0       1     marker, 0x4d
--   1       1     L, the option length, 3..40
--   2       2     P, the payload length, big-endian
--   4       L     one MPTCP option as it would sit in a TCP header
--                 (kind 30, length byte L, subtype in the high nibble)
--   4 + L   P     payload: connection-level data
--
-- doc/record-format.md in the mptcpshim tree defines the format; this
-- dissector checks what the library's decoder checks (src/wire.c), so a
-- record it calls malformed is one the receiving library would reset the
-- subflow for.
--
-- The dissector is heuristic: a direction of a TCP connection whose first
-- segment with payload starts with a record is taken as records, and so
-- is every later segment of that direction, reassembled across segments
-- through TCP's desegmentation.  Dissection of a direction stops after a
-- malformed record (nothing after it can be trusted) and after an
-- infinite mapping (the rest is raw data).
--
-- Load it with `tshark -X lua_script:mptcpshim.lua` or from Wireshark's
-- personal Lua plugin folder; tools/wireshark/README.md says more.
--
-- Tested with Wireshark 4.0 (Lua 5.2).  It uses no bitwise operators,
-- only arithmetic, so that the same file can run on Lua 5.2 to 5.4.
--

local mptcpshim = Proto("mptcpshim", "mptcpshim in-band MPTCP records")

local MARKER = 0x4d
local HDR_LEN = 4
local OPT_MIN = 3
local OPT_MAX = 40
local KIND_MPTCP = 30

local MP_CAPABLE = 0
local MP_JOIN = 1
local DSS = 2
local ADD_ADDR = 3
local REMOVE_ADDR = 4
local MP_PRIO = 5
local MP_FAIL = 6
local MP_FASTCLOSE = 7
local MP_TCPRST = 8
local PRIVATE = 15

local PRIVATE_DATA_WINDOW = 1

-- Names, as the library's mps_wire_subtype_name() gives them.
local subtype_names = {
	[MP_CAPABLE] = "MP_CAPABLE",
	[MP_JOIN] = "MP_JOIN",
	[DSS] = "DSS",
	[ADD_ADDR] = "ADD_ADDR",
	[REMOVE_ADDR] = "REMOVE_ADDR",
	[MP_PRIO] = "MP_PRIO",
	[MP_FAIL] = "MP_FAIL",
	[MP_FASTCLOSE] = "MP_FASTCLOSE",
	[MP_TCPRST] = "MP_TCPRST",
	[PRIVATE] = "EXPERIMENTAL",
}

local join_form_names = {
	[0] = "SYN (token, nonce)",
	[1] = "SYN/ACK (truncated HMAC, nonce)",
	[2] = "ACK (HMAC)",
}

-- RFC 8684 section 3.6.
local reason_names = {
	[0] = "Unspecified error",
	[1] = "MPTCP-specific error",
	[2] = "Lack of resources",
	[3] = "Administratively prohibited",
	[4] = "Too much outstanding data",
	[5] = "Unacceptable performance",
	[6] = "Middlebox interference",
}

-- Short names for the info column, as in the library's logs.
local reason_short = {
	[0] = "unspecified",
	[1] = "mptcp-error",
	[2] = "no-resources",
	[3] = "prohibited",
	[4] = "too-much-data",
	[5] = "poor-performance",
	[6] = "middlebox",
}

local private_type_names = {
	[PRIVATE_DATA_WINDOW] = "data window",
}

local version_names = {
	[0] = "0 (RFC 6824)",
	[1] = "1 (RFC 8684)",
}

--
-- Fields.  Every one is filterable as mptcpshim.<name>.
--

local pf = {}

local function field(key, ctor, ...)
	pf[key] = ctor("mptcpshim." .. key, ...)
end

local U8, U16, U32, U64 =
	ProtoField.uint8, ProtoField.uint16, ProtoField.uint32,
	ProtoField.uint64
local BOOL, BYTES = ProtoField.bool, ProtoField.bytes

-- The record header.
field("marker", U8, "Marker", base.HEX)
field("opt_len", U8, "Option length", base.DEC)
field("payload_len", U16, "Payload length", base.DEC)

-- The option's own TCP framing.
field("kind", U8, "Kind", base.DEC)
field("length", U8, "Length", base.DEC)
field("subtype", U8, "Subtype", base.DEC, subtype_names, 0xf0)

-- MP_CAPABLE.
field("mpc.version", U8, "Version", base.DEC, version_names, 0x0f)
field("mpc.flags", U8, "Flags", base.HEX)
field("mpc.flag.a", BOOL, "A: checksum required", 8, nil, 0x80)
field("mpc.flag.b", BOOL, "B: extensibility", 8, nil, 0x40)
field("mpc.flag.c", BOOL, "C: no subflows to the source address",
	8, nil, 0x20)
field("mpc.flag.reserved", U8, "D-G: reserved", base.HEX, nil, 0x1e)
field("mpc.flag.h", BOOL, "H: HMAC-SHA256 (v1) / HMAC-SHA1 (v0)",
	8, nil, 0x01)
field("mpc.sender_key", U64, "Sender's key", base.HEX)
field("mpc.receiver_key", U64, "Receiver's key", base.HEX)
field("mpc.data_len", U16, "Data-level length", base.DEC)
field("mpc.checksum", U16, "Checksum", base.HEX)

-- MP_JOIN.
field("join.form", U8, "Form", base.DEC, join_form_names)
field("join.reserved", U8, "Reserved", base.HEX, nil, 0x0e)
field("join.reserved12", U16, "Reserved", base.HEX, nil, 0x0fff)
field("join.backup", BOOL, "B: backup", 8, nil, 0x01)
field("join.addr_id", U8, "Address id", base.DEC)
field("join.token", U32, "Receiver's token", base.HEX)
field("join.nonce", U32, "Sender's random number", base.HEX)
field("join.hmac", BYTES, "HMAC")

-- DSS.
field("dss.reserved", U16, "Reserved", base.HEX, nil, 0x0fe0)
field("dss.flags", U8, "Flags", base.HEX, nil, 0x1f)
field("dss.flag.fin", BOOL, "F: DATA_FIN", 8, nil, 0x10)
field("dss.flag.dsn8", BOOL, "m: DSN is 8 bytes", 8, nil, 0x08)
field("dss.flag.map", BOOL, "M: mapping present", 8, nil, 0x04)
field("dss.flag.ack8", BOOL, "a: data ACK is 8 bytes", 8, nil, 0x02)
field("dss.flag.ack", BOOL, "A: data ACK present", 8, nil, 0x01)
field("dss.data_ack", U64, "Data ACK", base.DEC)
field("dss.dsn", U64, "Data sequence number", base.DEC)
field("dss.ssn", U32, "Subflow sequence number", base.DEC)
field("dss.data_len", U16, "Data-level length", base.DEC)
field("dss.checksum", U16, "Checksum", base.HEX)
field("dss.infinite", BOOL, "Infinite mapping")

-- ADD_ADDR.
field("add_addr.reserved", U8, "Reserved", base.HEX, nil, 0x0e)
field("add_addr.echo", BOOL, "E: echo", 8, nil, 0x01)
field("add_addr.ipver", U8, "IPVer", base.DEC, nil, 0x0f)
field("add_addr.addr_id", U8, "Address id", base.DEC)
field("add_addr.ipv4", ProtoField.ipv4, "Address")
field("add_addr.ipv6", ProtoField.ipv6, "Address")
field("add_addr.port", U16, "Port", base.DEC)
field("add_addr.hmac", BYTES, "Truncated HMAC")

-- REMOVE_ADDR.
field("remove_addr.reserved", U8, "Reserved", base.HEX, nil, 0x0f)
field("remove_addr.count", U8, "Number of address ids", base.DEC)
field("remove_addr.id", U8, "Address id", base.DEC)

-- MP_PRIO.
field("prio.reserved", U8, "Reserved", base.HEX, nil, 0x0e)
field("prio.backup", BOOL, "B: backup", 8, nil, 0x01)
field("prio.addr_id", U8, "Address id", base.DEC)

-- MP_FAIL and MP_FASTCLOSE share 12 reserved bits and one 64-bit value.
field("reserved12", U16, "Reserved", base.HEX, nil, 0x0fff)
field("fail.dsn", U64, "Data sequence number", base.DEC)
field("fastclose.receiver_key", U64, "Receiver's key", base.HEX)

-- MP_TCPRST.
field("tcprst.flags", U8, "Flags", base.HEX, nil, 0x0f)
field("tcprst.flag.u", BOOL, "U: reserved", 8, nil, 0x08)
field("tcprst.flag.v", BOOL, "V: reserved", 8, nil, 0x04)
field("tcprst.flag.w", BOOL, "W: reserved", 8, nil, 0x02)
field("tcprst.flag.t", BOOL, "T: transient", 8, nil, 0x01)
field("tcprst.reason", U8, "Reason", base.DEC, reason_names)

-- The private option (subtype 15): the data window.
field("private.reserved", U8, "Reserved", base.HEX, nil, 0x0f)
field("private.type", U8, "Private type", base.DEC, private_type_names)
field("private.data_window", U32, "Data window", base.DEC)

-- Connection-level data.
field("payload", BYTES, "Payload")
field("raw_data", BYTES, "Raw data")

local fields_list = {}
for _, f in pairs(pf) do
	fields_list[#fields_list + 1] = f
end
mptcpshim.fields = fields_list

local ef = {
	malformed = ProtoExpert.new("mptcpshim.malformed",
		"Malformed mptcpshim record",
		expert.group.MALFORMED, expert.severity.ERROR),
	infinite = ProtoExpert.new("mptcpshim.infinite_mapping",
		"Infinite mapping: the rest of this direction is raw data",
		expert.group.SEQUENCE, expert.severity.WARN),
	data_fin = ProtoExpert.new("mptcpshim.data_fin", "DATA_FIN",
		expert.group.SEQUENCE, expert.severity.CHAT),
	reset = ProtoExpert.new("mptcpshim.reset",
		"Subflow or connection reset",
		expert.group.SEQUENCE, expert.severity.WARN),
	mp_fail = ProtoExpert.new("mptcpshim.mp_fail",
		"MP_FAIL: checksum failure, fallback",
		expert.group.SEQUENCE, expert.severity.WARN),
	reassembly = ProtoExpert.new("mptcpshim.no_reassembly",
		"Record continues in a later segment; enable TCP reassembly",
		expert.group.REASSEMBLE, expert.severity.WARN),
}
mptcpshim.experts = {
	ef.malformed, ef.infinite, ef.data_fin, ef.reset, ef.mp_fail,
	ef.reassembly,
}

--
-- Preferences.
--

mptcpshim.prefs.default_version = Pref.uint("Version for connections "
	.. "without MP_CAPABLE", 1, "MPTCP version (0 or 1) for ADD_ADDR, "
	.. "MP_PRIO and MP_TCPRST on a connection whose MP_CAPABLE exchange "
	.. "is not in the capture, such as an MP_JOIN subflow")
mptcpshim.prefs.anywhere = Pref.bool("Recognise records mid-stream", false,
	"Take a TCP direction as records from any segment that starts with "
	.. "a record header, not only when its first segment with payload "
	.. "does (for captures that miss the start of a connection)")

--
-- Arithmetic on bytes, in place of bitwise operators.
--

local function bits(value, shift, width)
	return math.floor(value / 2 ^ shift) % 2 ^ width
end

local function high_nibble(byte)
	return bits(byte, 4, 4)
end

local function low_nibble(byte)
	return bits(byte, 0, 4)
end

local function flag(byte, bit)
	return bits(byte, bit, 1) == 1
end

local function u64_text(range)
	return tostring(range:uint64())
end

local function ipv4_text(tvb, off)
	local parts = {}

	for i = 0, 3 do
		parts[#parts + 1] = tostring(tvb(off + i, 1):uint())
	end
	return table.concat(parts, ".")
end

-- Eight groups, no "::" compression: enough for an info column.
local function ipv6_text(tvb, off)
	local parts = {}

	for i = 0, 7 do
		local group = tvb(off + 2 * i, 2):uint()

		parts[#parts + 1] = string.format("%x", group)
	end
	return "[" .. table.concat(parts, ":") .. "]"
end

--
-- Option parsers.  Each one reads the option of length L at offset o of
-- tvb and fills the table opt:
--   items    what to show: fields {f, off, len, kids, value, generated}
--            or text {text, off, len}, offsets relative to the option
--   info     a short text for the info column
--   err      when set, why the library would reject the option
--   mapping  {data_len, fin} for an option that maps payload
-- They never touch the tree, so that a record can be checked before its
-- payload has arrived.
--

local function item(list, f, off, len, value)
	local it = { f = f, off = off, len = len, value = value }

	list[#list + 1] = it
	return it
end

local function generated(list, f, off, len, value)
	local it = item(list, f, off, len, value)

	it.generated = true
	return it
end

local function kids(parent, ...)
	parent.kids = {}
	for _, key in ipairs({ ... }) do
		parent.kids[#parent.kids + 1] =
			{ f = pf[key], off = parent.off, len = parent.len }
	end
end

local function fail(opt, message)
	if not opt.err then
		opt.err = message
	end
end

-- Forms by version and length.  In-band, each side's first MP_CAPABLE
-- is the 12-byte form with its own key, and the client's third one the
-- 20-byte form (or 22, 24 with the first data) echoing both.
local mpc_forms = {
	[0] = { [12] = "sender's key", [20] = "both keys" },
	[1] = {
		[4] = "no key (SYN layout)",
		[12] = "sender's key",
		[20] = "both keys",
		[22] = "both keys and data-level length",
		[24] = "both keys, data-level length and checksum",
	},
}

-- RFC 8684 section 3.1: B must be 0; H must name the HMAC; the others but
-- A (and C in version 1) are reserved.
local function mpc_check_flags(opt, version, flags)
	if flag(flags, 6) then
		return fail(opt, "MP_CAPABLE extensibility bit (B) is set")
	end
	if bits(flags, 1, 4) ~= 0 or (version == 0 and flag(flags, 5)) then
		return fail(opt, "reserved MP_CAPABLE flags are set")
	end
	if not flag(flags, 0) then
		return fail(opt, "MP_CAPABLE names no HMAC algorithm (H)")
	end
end

local function parse_mp_capable(tvb, o, L, opt)
	local version = low_nibble(tvb(o + 2, 1):uint())
	local flags = tvb(o + 3, 1):uint()
	local form, f

	item(opt.items, pf["mpc.version"], 2, 1)
	f = item(opt.items, pf["mpc.flags"], 3, 1)
	kids(f, "mpc.flag.a", "mpc.flag.b", "mpc.flag.c",
		"mpc.flag.reserved", "mpc.flag.h")
	opt.info = "MP_CAPABLE v" .. version
	opt.mpc_version = version
	if version > 1 then
		return fail(opt, "MPTCP version is neither 0 nor 1")
	end

	form = mpc_forms[version][L]
	if not form then
		return fail(opt, "MP_CAPABLE v" .. version
			.. " has no form of length " .. L)
	end
	opt.items[#opt.items + 1] =
		{ text = "Form: " .. form, off = 0, len = L }
	mpc_check_flags(opt, version, flags)

	if L >= 12 then
		item(opt.items, pf["mpc.sender_key"], 4, 8)
	end
	if L >= 20 then
		item(opt.items, pf["mpc.receiver_key"], 12, 8)
	end
	if L >= 22 then
		item(opt.items, pf["mpc.data_len"], 20, 2)
		opt.mapping = { data_len = tvb(o + 20, 2):uint(), fin = false }
		opt.info = opt.info .. " len=" .. opt.mapping.data_len
	end
	if L == 24 then
		item(opt.items, pf["mpc.checksum"], 22, 2)
	end
end

local join_forms = { [12] = 0, [16] = 1, [24] = 2 }

local function parse_mp_join(tvb, o, L, opt)
	local form = join_forms[L]
	local byte2 = tvb(o + 2, 1):uint()

	opt.info = "MP_JOIN"
	if not form then
		return fail(opt, "MP_JOIN has no form of length " .. L)
	end
	generated(opt.items, pf["join.form"], 0, L, form)

	if form == 2 then
		item(opt.items, pf["join.reserved12"], 2, 2)
		item(opt.items, pf["join.hmac"], 4, 20)
		opt.info = "MP_JOIN ACK"
		if low_nibble(byte2) ~= 0 or tvb(o + 3, 1):uint() ~= 0 then
			fail(opt, "reserved MP_JOIN bits are set")
		end
		return
	end

	item(opt.items, pf["join.reserved"], 2, 1)
	item(opt.items, pf["join.backup"], 2, 1)
	item(opt.items, pf["join.addr_id"], 3, 1)
	if form == 0 then
		item(opt.items, pf["join.token"], 4, 4)
		item(opt.items, pf["join.nonce"], 8, 4)
		opt.info = string.format("MP_JOIN SYN token=%08x id=%d",
			tvb(o + 4, 4):uint(), tvb(o + 3, 1):uint())
	else
		item(opt.items, pf["join.hmac"], 4, 8)
		item(opt.items, pf["join.nonce"], 12, 4)
		opt.info = "MP_JOIN SYN/ACK id=" .. tvb(o + 3, 1):uint()
	end
	if flag(byte2, 0) then
		opt.info = opt.info .. " backup"
	end
	if bits(byte2, 1, 3) ~= 0 then
		fail(opt, "reserved MP_JOIN bits are set")
	end
end

-- RFC 8684 section 3.3: a and m only size what A and M announce, and a
-- DATA_FIN is counted by a mapping.
local function dss_check_flags(opt, byte2, flags)
	if low_nibble(byte2) ~= 0 or bits(flags, 5, 3) ~= 0 then
		return fail(opt, "reserved DSS bits are set")
	end
	if flag(flags, 1) and not flag(flags, 0) then
		return fail(opt, "DSS flag a without A")
	end
	if flag(flags, 3) and not flag(flags, 2) then
		return fail(opt, "DSS flag m without M")
	end
	if flag(flags, 4) and not flag(flags, 2) then
		return fail(opt, "DSS DATA_FIN without a mapping")
	end
end

local function dss_len(flags)
	local len = 4

	if flag(flags, 0) then
		len = len + (flag(flags, 1) and 8 or 4)
	end
	if flag(flags, 2) then
		len = len + (flag(flags, 3) and 8 or 4) + 4 + 2
	end
	return len
end

local function parse_dss_mapping(tvb, o, p, flags, opt, words)
	local dsn_len = flag(flags, 3) and 8 or 4
	local data_len

	item(opt.items, pf["dss.dsn"], p, dsn_len)
	item(opt.items, pf["dss.ssn"], p + dsn_len, 4)
	item(opt.items, pf["dss.data_len"], p + dsn_len + 4, 2)
	data_len = tvb(o + p + dsn_len + 4, 2):uint()
	opt.mapping = { data_len = data_len, fin = flag(flags, 4) }
	words[#words + 1] = "dsn=" .. u64_text(tvb(o + p, dsn_len))
	words[#words + 1] = "len=" .. data_len
	if data_len == 0 then
		opt.infinite = true
		generated(opt.items, pf["dss.infinite"], p + dsn_len + 4, 2,
			true)
		words[#words + 1] = "infinite"
	end
	if opt.mapping.fin then
		words[#words + 1] = "DATA_FIN"
	end
	return p + dsn_len + 4 + 2
end

local function parse_dss(tvb, o, L, opt)
	local byte2 = tvb(o + 2, 1):uint()
	local flags = tvb(o + 3, 1):uint()
	local want = dss_len(flags)
	local words = { "DSS" }
	local f, p

	item(opt.items, pf["dss.reserved"], 2, 2)
	f = item(opt.items, pf["dss.flags"], 3, 1)
	kids(f, "dss.flag.fin", "dss.flag.dsn8", "dss.flag.map",
		"dss.flag.ack8", "dss.flag.ack")
	opt.info = "DSS"
	dss_check_flags(opt, byte2, flags)
	if opt.err then
		return
	end
	if L ~= want and not (flag(flags, 2) and L == want + 2) then
		return fail(opt, "DSS length " .. L .. " does not match its "
			.. "flags (" .. want .. ", or " .. want + 2
			.. " with a checksum after a mapping)")
	end

	p = 4
	if flag(flags, 0) then
		local ack_len = flag(flags, 1) and 8 or 4

		item(opt.items, pf["dss.data_ack"], p, ack_len)
		words[#words + 1] = "ack=" .. u64_text(tvb(o + p, ack_len))
		p = p + ack_len
	end
	if flag(flags, 2) then
		p = parse_dss_mapping(tvb, o, p, flags, opt, words)
	end
	if p + 2 == L then
		item(opt.items, pf["dss.checksum"], p, 2)
	end
	opt.info = table.concat(words, " ")
end

-- By length: the family, whether a port and an HMAC follow.
local add_addr_forms = {
	[8] = { v6 = false, port = false, hmac = false },
	[10] = { v6 = false, port = true, hmac = false },
	[16] = { v6 = false, port = false, hmac = true },
	[18] = { v6 = false, port = true, hmac = true },
	[20] = { v6 = true, port = false, hmac = false },
	[22] = { v6 = true, port = true, hmac = false },
	[28] = { v6 = true, port = false, hmac = true },
	[30] = { v6 = true, port = true, hmac = true },
}

local function add_addr_fields(tvb, o, form, opt)
	local alen = form.v6 and 16 or 4
	local text

	item(opt.items, pf["add_addr.addr_id"], 3, 1)
	if form.v6 then
		item(opt.items, pf["add_addr.ipv6"], 4, 16)
		text = ipv6_text(tvb, o + 4)
	else
		item(opt.items, pf["add_addr.ipv4"], 4, 4)
		text = ipv4_text(tvb, o + 4)
	end
	if form.port then
		item(opt.items, pf["add_addr.port"], 4 + alen, 2)
		text = text .. ":" .. tvb(o + 4 + alen, 2):uint()
	end
	if form.hmac then
		item(opt.items, pf["add_addr.hmac"],
			4 + alen + (form.port and 2 or 0), 8)
	end
	opt.info = "ADD_ADDR id=" .. tvb(o + 3, 1):uint() .. " " .. text
end

local function parse_add_addr_v1(tvb, o, L, opt)
	local byte2 = tvb(o + 2, 1):uint()
	local form = add_addr_forms[L]
	local echo = flag(byte2, 0)

	item(opt.items, pf["add_addr.reserved"], 2, 1)
	item(opt.items, pf["add_addr.echo"], 2, 1)
	opt.info = "ADD_ADDR"
	if not form then
		return fail(opt, "ADD_ADDR has no form of length " .. L)
	end
	add_addr_fields(tvb, o, form, opt)
	if echo then
		opt.info = opt.info .. " echo"
	end
	if bits(byte2, 1, 3) ~= 0 then
		return fail(opt, "reserved ADD_ADDR bits are set")
	end
	if form.hmac == echo then
		return fail(opt, "ADD_ADDR length " .. L .. " does not match "
			.. "its E flag (an echo has no HMAC, the rest one)")
	end
end

local function parse_add_addr_v0(tvb, o, L, opt)
	local ipver = low_nibble(tvb(o + 2, 1):uint())
	local form = add_addr_forms[L]

	item(opt.items, pf["add_addr.ipver"], 2, 1)
	opt.info = "ADD_ADDR"
	if ipver ~= 4 and ipver ~= 6 then
		return fail(opt, "ADD_ADDR IPVer " .. ipver .. " is neither 4 "
			.. "nor 6")
	end
	if not form or form.hmac or form.v6 ~= (ipver == 6) then
		return fail(opt, "ADD_ADDR v0 length " .. L
			.. " does not match IPVer " .. ipver)
	end
	add_addr_fields(tvb, o, form, opt)
end

local function parse_remove_addr(tvb, o, L, opt)
	local ids = {}

	item(opt.items, pf["remove_addr.reserved"], 2, 1)
	generated(opt.items, pf["remove_addr.count"], 3, L - 3, L - 3)
	for i = 3, L - 1 do
		item(opt.items, pf["remove_addr.id"], i, 1)
		ids[#ids + 1] = tostring(tvb(o + i, 1):uint())
	end
	opt.info = "REMOVE_ADDR ids=" .. table.concat(ids, ",")
	if low_nibble(tvb(o + 2, 1):uint()) ~= 0 then
		fail(opt, "reserved REMOVE_ADDR bits are set")
	end
end

local function parse_mp_prio(tvb, o, L, opt)
	local byte2 = tvb(o + 2, 1):uint()

	item(opt.items, pf["prio.reserved"], 2, 1)
	item(opt.items, pf["prio.backup"], 2, 1)
	opt.info = "MP_PRIO backup=" .. bits(byte2, 0, 1)
	if L ~= 3 and not (L == 4 and opt.version == 0) then
		return fail(opt, "MP_PRIO has no form of length " .. L
			.. " in version " .. opt.version)
	end
	if L == 4 then
		item(opt.items, pf["prio.addr_id"], 3, 1)
		opt.info = opt.info .. " id=" .. tvb(o + 3, 1):uint()
	end
	if bits(byte2, 1, 3) ~= 0 then
		fail(opt, "reserved MP_PRIO bits are set")
	end
end

-- MP_FAIL (RFC 8684 section 3.7) and MP_FASTCLOSE (section 3.5).
local function parse_reserved_u64(tvb, o, L, opt, key)
	item(opt.items, pf["reserved12"], 2, 2)
	if L ~= 12 then
		return fail(opt, opt.name .. " is 12 bytes long, not " .. L)
	end
	item(opt.items, pf[key], 4, 8)
	if tvb(o + 2, 2):uint() % 4096 ~= 0 then
		return fail(opt, "reserved " .. opt.name .. " bits are set")
	end
	return true
end

local function parse_mp_fail(tvb, o, L, opt)
	opt.info = "MP_FAIL"
	if parse_reserved_u64(tvb, o, L, opt, "fail.dsn") then
		opt.info = "MP_FAIL dsn=" .. u64_text(tvb(o + 4, 8))
		opt.expert = ef.mp_fail
	end
end

local function parse_mp_fastclose(tvb, o, L, opt)
	opt.info = "MP_FASTCLOSE"
	if parse_reserved_u64(tvb, o, L, opt, "fastclose.receiver_key") then
		opt.expert = ef.reset
	end
end

local function parse_mp_tcprst(tvb, o, L, opt)
	local byte2 = tvb(o + 2, 1):uint()
	local reason, f

	opt.info = "MP_TCPRST"
	if L ~= 4 then
		return fail(opt, "MP_TCPRST is 4 bytes long, not " .. L)
	end
	f = item(opt.items, pf["tcprst.flags"], 2, 1)
	kids(f, "tcprst.flag.u", "tcprst.flag.v", "tcprst.flag.w",
		"tcprst.flag.t")
	item(opt.items, pf["tcprst.reason"], 3, 1)
	reason = tvb(o + 3, 1):uint()
	opt.info = "MP_TCPRST reason=" .. (reason_short[reason] or reason)
	if flag(byte2, 0) then
		opt.info = opt.info .. " transient"
	end
	opt.expert = ef.reset
	if opt.version == 0 then
		return fail(opt, "MP_TCPRST does not exist in version 0")
	end
	if bits(byte2, 1, 3) ~= 0 then
		return fail(opt, "reserved MP_TCPRST flags (U, V, W) are set")
	end
	if not reason_names[reason] then
		fail(opt, "unknown MP_TCPRST reason " .. reason)
	end
end

-- The data window: doc/record-format.md, subtype 15.
local function parse_private(tvb, o, L, opt)
	local ptype

	item(opt.items, pf["private.reserved"], 2, 1)
	opt.info = "EXPERIMENTAL"
	if L ~= 8 then
		return fail(opt, "private option is 8 bytes long, not " .. L)
	end
	item(opt.items, pf["private.type"], 3, 1)
	item(opt.items, pf["private.data_window"], 4, 4)
	ptype = tvb(o + 3, 1):uint()
	if ptype == PRIVATE_DATA_WINDOW then
		opt.info = "DATA_WINDOW win=" .. tvb(o + 4, 4):uint()
	end
	if low_nibble(tvb(o + 2, 1):uint()) ~= 0 then
		return fail(opt, "reserved bits of the private option are set")
	end
	if ptype ~= PRIVATE_DATA_WINDOW then
		fail(opt, "unknown private option type " .. ptype)
	end
end

local parsers = {
	[MP_CAPABLE] = parse_mp_capable,
	[MP_JOIN] = parse_mp_join,
	[DSS] = parse_dss,
	[ADD_ADDR] = function(tvb, o, L, opt)
		if opt.version == 0 then
			return parse_add_addr_v0(tvb, o, L, opt)
		end
		return parse_add_addr_v1(tvb, o, L, opt)
	end,
	[REMOVE_ADDR] = parse_remove_addr,
	[MP_PRIO] = parse_mp_prio,
	[MP_FAIL] = parse_mp_fail,
	[MP_FASTCLOSE] = parse_mp_fastclose,
	[MP_TCPRST] = parse_mp_tcprst,
	[PRIVATE] = parse_private,
}

-- The shortest form of each option: the parsers may read that much.
local min_len = {
	[MP_CAPABLE] = 4,
	[MP_JOIN] = 12,
	[DSS] = 4,
	[ADD_ADDR] = 8,
	[REMOVE_ADDR] = 4,
	[MP_PRIO] = 3,
	[MP_FAIL] = 12,
	[MP_FASTCLOSE] = 12,
	[MP_TCPRST] = 4,
	[PRIVATE] = 8,
}

-- Parse the option of length L at offset o (kind and length byte already
-- checked), for a connection of the given version.
local function parse_option(tvb, o, L, version)
	local subtype = high_nibble(tvb(o + 2, 1):uint())
	local opt = {
		subtype = subtype,
		name = subtype_names[subtype]
			or ("unknown subtype " .. subtype),
		version = version,
		items = {},
	}
	local parser = parsers[subtype]

	opt.info = opt.name
	if not parser then
		fail(opt, "unknown MPTCP option subtype " .. subtype)
		return opt
	end
	if L < min_len[subtype] then
		fail(opt, opt.name .. " is at least " .. min_len[subtype]
			.. " bytes long, not " .. L)
		return opt
	end
	parser(tvb, o, L, opt)
	return opt
end

-- Only a mapping carries payload, and its data-level length is the
-- payload's plus one for a DATA_FIN (doc/record-format.md, "Payload
-- rules").
local function check_payload(opt, P)
	local m = opt.mapping

	if opt.err then
		return
	end
	if m then
		if m.data_len ~= P + (m.fin and 1 or 0) then
			fail(opt, "data-level length " .. m.data_len
				.. " does not match payload length " .. P
				.. (m.fin and " plus DATA_FIN" or ""))
		end
	elseif P ~= 0 then
		fail(opt, "payload on an option that maps no data")
	end
end

--
-- State.  A direction of a TCP connection is known by its addresses and
-- ports, a connection by the two directions' keys in order.  Field
-- extractors (tcp.stream, tcp.seq) are not used: tshark -2 builds no tree
-- in its first pass, where they would give nothing.
--
-- Whether a direction is records is decided once, in the first pass, on
-- the first segment of it with payload that TCP offers this dissector:
-- its bytes must start a record.  A recognised direction keeps the frame
-- after which dissection stops (a malformed record, an infinite mapping);
-- a connection keeps the MPTCP version its MP_CAPABLE announced.
--

local directions = {}
local connections = {}

function mptcpshim.init()
	directions = {}
	connections = {}
end

local function endpoint(addr, port)
	return tostring(addr) .. " " .. port
end

local function direction_key(pinfo)
	return endpoint(pinfo.src, pinfo.src_port) .. " > "
		.. endpoint(pinfo.dst, pinfo.dst_port)
end

local function connection_key(pinfo)
	local a = endpoint(pinfo.src, pinfo.src_port)
	local b = endpoint(pinfo.dst, pinfo.dst_port)

	if a > b then
		a, b = b, a
	end
	return a .. " " .. b
end

local function connection_version(pinfo)
	local c = connections[connection_key(pinfo)]

	if c and c.version then
		return c.version
	end
	return mptcpshim.prefs.default_version == 0 and 0 or 1
end

-- True when tvb starts with a record header: marker, L in range, kind
-- 30, length byte L (as far as the bytes present go, at least 2).
local function starts_with_record(tvb)
	local len = tvb:len()
	local L

	if len < 2 or tvb(0, 1):uint() ~= MARKER then
		return false
	end
	L = tvb(1, 1):uint()
	if L < OPT_MIN or L > OPT_MAX then
		return false
	end
	if len >= 5 and tvb(4, 1):uint() ~= KIND_MPTCP then
		return false
	end
	return len < 6 or tvb(5, 1):uint() == L
end

-- Decide, in the first pass, whether this direction is records.
local function recognise(tvb, pinfo, key)
	local records

	if pinfo.visited then
		return nil
	end
	records = starts_with_record(tvb)
	if not records and mptcpshim.prefs.anywhere then
		return nil
	end
	directions[key] = { records = records, first = pinfo.number }
	return directions[key]
end

-- The state of this segment's direction; nil for a direction that is not
-- records, or no longer records at this frame.
local function direction_state(tvb, pinfo)
	local key = direction_key(pinfo)
	local st = directions[key] or recognise(tvb, pinfo, key)

	if not st or not st.records or pinfo.number < st.first then
		return nil
	end
	if st.stop and pinfo.number > st.stop then
		return nil
	end
	return st
end

--
-- The tree.
--

local function add_items(tree, tvb, o, items)
	for _, it in ipairs(items) do
		local range = tvb(o + it.off, it.len)
		local ti

		if it.text then
			ti = tree:add(range, it.text)
		elseif it.value ~= nil then
			ti = tree:add(it.f, range, it.value)
		else
			ti = tree:add(it.f, range)
		end
		if it.generated then
			ti:set_generated()
		end
		if it.kids then
			add_items(ti, tvb, o, it.kids)
		end
	end
end

local function add_header(tree, tvb, off)
	local t = tree:add(tvb(off, HDR_LEN), "Record header")

	t:add(pf.marker, tvb(off, 1))
	t:add(pf.opt_len, tvb(off + 1, 1))
	t:add(pf.payload_len, tvb(off + 2, 2))
	return t
end

local function add_option(tree, tvb, o, L, opt)
	local t = tree:add(tvb(o, L), "MPTCP option: " .. opt.name)

	t:add(pf.kind, tvb(o, 1))
	t:add(pf.length, tvb(o + 1, 1))
	t:add(pf.subtype, tvb(o + 2, 1))
	add_items(t, tvb, o, opt.items)
	if opt.err then
		t:add_proto_expert_info(ef.malformed, opt.err)
	elseif opt.infinite then
		t:add_proto_expert_info(ef.infinite)
	elseif opt.mapping and opt.mapping.fin then
		t:add_proto_expert_info(ef.data_fin)
	elseif opt.expert then
		t:add_proto_expert_info(opt.expert, opt.info)
	end
	return t
end

local function add_payload(tree, tvb, off, P)
	local ti

	if P == 0 then
		return
	end
	ti = tree:add(pf.payload, tvb(off, P))
	ti:append_text(" (" .. P .. " bytes)")
end

-- The whole record at off, parsed as opt; returns its subtree.
local function add_record(tree, tvb, off, L, P, opt)
	local t = tree:add(mptcpshim, tvb(off, HDR_LEN + L + P))

	t:append_text(": " .. (opt.info or opt.name))
	add_header(t, tvb, off)
	add_option(t, tvb, off + HDR_LEN, L, opt)
	add_payload(t, tvb, off + HDR_LEN + L, P)
	return t
end

-- A record that cannot even be framed: a bad header, kind or length
-- byte.  Shows the bytes from off on and the reason.
local function add_broken(tree, tvb, off, message)
	local t = tree:add(mptcpshim, tvb(off))

	t:append_text(": malformed record")
	t:add(pf.raw_data, tvb(off))
	t:add_proto_expert_info(ef.malformed, message)
end

-- Bytes from off on that are no longer records, if there are any.
local function add_raw(tree, tvb, off, what)
	local t

	if off >= tvb:len() then
		return
	end
	t = tree:add(mptcpshim, tvb(off))
	t:append_text(": " .. what)
	t:add(pf.raw_data, tvb(off))
end

--
-- The records of one segment (or of a reassembled run of segments).
--

-- Why the framing at off is wrong, judging from the bytes present, or nil.
local function framing_error(tvb, off)
	local remain = tvb:len() - off
	local L

	if tvb(off, 1):uint() ~= MARKER then
		return string.format("record starts with 0x%02x, not the "
			.. "marker 0x4d", tvb(off, 1):uint())
	end
	if remain < 2 then
		return nil
	end
	L = tvb(off + 1, 1):uint()
	if L < OPT_MIN or L > OPT_MAX then
		return "record option length " .. L .. " is outside 3..40"
	end
	if remain >= 5 and tvb(off + 4, 1):uint() ~= KIND_MPTCP then
		return "option kind " .. tvb(off + 4, 1):uint()
			.. " is not 30 (MPTCP)"
	end
	if remain >= 6 and tvb(off + 5, 1):uint() ~= L then
		return "option length byte " .. tvb(off + 5, 1):uint()
			.. " differs from the record's " .. L
	end
	return nil
end

-- TCP may call the dissector more than once for one frame: the info
-- column then lists the records of every call.
local function set_info(pinfo, words)
	local text = table.concat(words, ", ")

	if #words == 0 then
		return
	end
	if tostring(pinfo.cols.protocol) == "MPTCPshim" then
		pinfo.cols.info:append(", " .. text)
	else
		pinfo.cols.protocol:set("MPTCPshim")
		pinfo.cols.info:set(text)
	end
	pinfo.cols.info:fence()
end

-- Ask TCP for more bytes: need of them, or one more segment when unknown.
local function need_more(tvb, pinfo, tree, off, need)
	if pinfo.can_desegment > 0 then
		pinfo.desegment_offset = off
		pinfo.desegment_len = need or DESEGMENT_ONE_MORE_SEGMENT
		return
	end
	tree:add(mptcpshim, tvb(off)):add_proto_expert_info(ef.reassembly)
end

-- Stop dissecting this direction after this frame.
local function stop_here(st, pinfo)
	if not pinfo.visited and not st.stop then
		st.stop = pinfo.number
	end
end

local function remember_version(opt, pinfo)
	local key, c

	if opt.subtype ~= MP_CAPABLE or opt.err or pinfo.visited then
		return
	end
	key = connection_key(pinfo)
	c = connections[key] or {}
	c.version = c.version or opt.mpc_version
	connections[key] = c
end

-- A record whose bytes cannot be framed, or that this script failed on:
-- show the rest as malformed and stop the direction.
local function give_up(tvb, pinfo, tree, st, off, message, words)
	add_broken(tree, tvb, off, message)
	words[#words + 1] = "malformed record"
	stop_here(st, pinfo)
end

-- The tree of a parsed record, and what follows from it.  Returns the
-- offset after the record, or nil when this direction's records end.
local function finish_record(tvb, pinfo, tree, st, off, L, P, opt, words)
	add_record(tree, tvb, off, L, P, opt)
	words[#words + 1] = opt.info or opt.name
	remember_version(opt, pinfo)
	off = off + HDR_LEN + L + P
	if opt.err then
		words[#words] = words[#words] .. " [malformed]"
		stop_here(st, pinfo)
		add_raw(tree, tvb, off, "bytes after a malformed record")
		return nil
	end
	if opt.infinite then
		stop_here(st, pinfo)
		add_raw(tree, tvb, off, "raw data after the infinite mapping")
		return nil
	end
	return off
end

-- Dissect the record at off.  Returns the offset after it, or nil when
-- dissection of this tvb ends there (more bytes needed, malformed,
-- infinite mapping).  The option is judged as soon as it is complete,
-- before its payload has arrived, as the library's decoder does.
local function dissect_one(tvb, pinfo, tree, st, off, words)
	local remain = tvb:len() - off
	local problem = framing_error(tvb, off)
	local L, P, ok, opt

	if problem then
		return give_up(tvb, pinfo, tree, st, off, problem, words)
	end
	if remain < HDR_LEN then
		return need_more(tvb, pinfo, tree, off, nil)
	end
	L = tvb(off + 1, 1):uint()
	P = tvb(off + 2, 2):uint()
	if remain < HDR_LEN + L then
		return need_more(tvb, pinfo, tree, off,
			HDR_LEN + L + P - remain)
	end

	ok, opt = pcall(parse_option, tvb, off + HDR_LEN, L,
		connection_version(pinfo))
	if not ok then
		return give_up(tvb, pinfo, tree, st, off,
			"mptcpshim.lua failed on this record: "
				.. tostring(opt),
			words)
	end
	check_payload(opt, P)
	if opt.err then
		P = math.min(P, remain - HDR_LEN - L)
	elseif remain < HDR_LEN + L + P then
		return need_more(tvb, pinfo, tree, off,
			HDR_LEN + L + P - remain)
	end
	return finish_record(tvb, pinfo, tree, st, off, L, P, opt, words)
end

local function dissect_records(tvb, pinfo, tree, st)
	local words = {}
	local off = 0

	while off and off < tvb:len() do
		off = dissect_one(tvb, pinfo, tree, st, off, words)
	end
	set_info(pinfo, words)
	return tvb:len()
end

function mptcpshim.dissector(tvb, pinfo, tree)
	local st = direction_state(tvb, pinfo)

	if not st then
		return 0
	end
	return dissect_records(tvb, pinfo, tree, st)
end

-- The heuristic entry: TCP offers every segment no other dissector took.
-- Once one direction is recognised, the whole conversation is handed to
-- mptcpshim.dissector, which recognises the other direction by itself
-- and gives back (returns 0 for) a direction that is not records.
local function heuristic(tvb, pinfo, tree)
	local st = direction_state(tvb, pinfo)

	if not st then
		return false
	end
	pinfo.conversation = mptcpshim
	dissect_records(tvb, pinfo, tree, st)
	return true
end

mptcpshim:register_heuristic("tcp", heuristic)

-- Decode As: for a port whose usual dissector claims the stream first.
DissectorTable.get("tcp.port"):add_for_decode_as(mptcpshim)
