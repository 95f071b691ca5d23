"""Tag tables from the tools people already have: Telegraf, Kepware, TIA Portal, Node-RED.

Each importer reads one tool's documented export or configuration format and returns a
:class:`bifrost.TagTable` of bifrost addresses (``hr:0:float32:CDAB@1``,
``DB1.DBD4:REAL``, ``ns=2;s=Line.Speed``), each checked by the protocol's own address
grammar before the table is returned. Use them through the ``TagTable`` class methods:
:meth:`~bifrost.TagTable.from_telegraf`, :meth:`~bifrost.TagTable.from_kepware`,
:meth:`~bifrost.TagTable.from_tia` and :meth:`~bifrost.TagTable.from_node_red`.

Errors are :class:`bifrost.ConfigurationError` naming the file, the line (or the sheet
row) and the field at fault. An entry whose type bifrost cannot read (a Telegraf
``INT8L``, a Kepware ``BCD``, a TIA ``DTL``) is an error too, unless
``skip_unsupported=True``: then it is left out with one
:class:`bifrost.exceptions.TagFileWarning` listing what was left out.
"""
