"""Texts the int8 export is made with and checked against: written for qa, shipped with it, never downloaded.

``CALIBRATION`` gives the activation ranges the export's smoothing reads
(qa/embed/export.py): questions, keywords, a symbol alone, prose, lists,
numbers, code and other scripts, short and up to the model's window, because
one outlier channel of one kind of input is what breaks an 8-bit scale.
``CHECK`` is a different set of the same kinds: an export is used on a CPU only
if its vectors for these stay within ``FIDELITY`` of the fp32 model's there
(qa/embed/onnx.py), so no CPU gets vectors nobody measured.
"""

from __future__ import annotations

_RIVER = (
    "The river rises in a limestone plateau and runs two hundred kilometres to the sea. In its upper reaches it "
    "cuts a narrow gorge, where mills once turned on every bend; lower down it widens into marshes that flood "
    "each winter and dry into meadows by June. Farmers grazed cattle there for centuries, and the parish records "
    "list disputes over who might cut the reeds. A canal was dug beside the lower river in 1794 to carry coal, "
    "but the railway took its trade within fifty years, and the locks were left to silt. Today the marshes are a "
    "reserve: herons nest in the alders, otters have returned, and the old towpath is walked by thousands each "
    "summer. Engineers still argue over the weir at the estuary, which keeps salt water out of the fields but "
    "stops the salmon that once ran up to spawn in the gravel beds below the gorge."
)
_BUDGET = (
    "Section 4.2: Operating costs. Personnel expenses rose 6.1% to EUR 48.3 million (2022: 45.5 million), chiefly "
    "because 112 engineers were hired for the data-centre programme. Energy costs fell 18% after two long-term "
    "supply contracts replaced spot purchases; see table 7 on page 31. Depreciation of EUR 12.9 million includes "
    "an impairment of 2.4 million on the Lyon warehouse, which is to be sold in Q3. Other costs: travel 1.1, "
    "consulting 3.8, licences 5.2, insurance 0.9 (all EUR million). The board expects the cost ratio to reach "
    "61-63% next year, against 64.8% this year, provided wage agreements stay within the ranges agreed in March."
)
_MEETING = (
    "Minutes of the meeting held on Tuesday, 14 March, 10:00-11:30. Present: A. Novak (chair), R. Okafor, "
    "L. Chen, M. Dubois; apologies from S. Patel. 1. The minutes of the previous meeting were approved without "
    "change. 2. Budget: R. Okafor reported that spending is 3% under plan; the reserve will not be touched. "
    "3. Office move: the lease on the second floor ends in September; L. Chen will collect three quotes from "
    "removal firms by the end of the month. 4. Any other business: none. The next meeting is on 11 April."
)
_CODE = (
    "def merge(left, right):\n    out, i, j = [], 0, 0\n    while i < len(left) and j < len(right):\n"
    "        if left[i] <= right[j]:\n            out.append(left[i]); i += 1\n        else:\n"
    "            out.append(right[j]); j += 1\n    return out + left[i:] + right[j:]\n"
)
_LETTER = (
    "Dear Ms Harper, thank you for your letter of 2 May about the delayed delivery. I am sorry that the parts "
    "arrived three weeks late and that your production line stood still for two days as a result. Our carrier "
    "lost the pallet at its depot in Rotterdam; it was found on 29 April and delivered the next morning. As a "
    "gesture of goodwill we will credit 15% of the invoice, and your next two orders will travel by our express "
    "service at no extra charge. Yours sincerely, Daniel Ortiz, Customer Service Manager"
)

_NEWS = (
    "GENEVA, 3 June — Talks between the two delegations broke up on Friday without agreement, officials said, "
    "after a week in which each side accused the other of bad faith.\n\n\u201cWe came here to negotiate, not to "
    "listen to ultimatums,\u201d the deputy foreign minister told reporters outside the Palais des Nations. His "
    "counterpart replied that the proposals on the table \u201chad been known for months\u201d and that the door "
    "remained open.\n\nThe dispute centres on the withdrawal of forces from the border region, on prisoner "
    "exchanges and on who would monitor a ceasefire. Diplomats said a draft text of eleven points had been "
    "agreed in principle on Tuesday, but that two clauses \u2014 on sanctions relief and on the timetable for "
    "elections \u2014 were reopened on Thursday night. The United Nations envoy said she would travel to both "
    "capitals next week. Analysts were sceptical: \u201cNeither government can be seen to give ground before "
    "the autumn,\u201d said one, who asked not to be named.\n\nMarkets barely moved on the news."
)
_ESSAY = (
    "Why do some cities thrive while others decline? Historians once pointed to geography: a harbour, a ford, "
    "a crossing of trade routes. Economists later stressed the clustering of skills, the way firms gather where "
    "workers already are, and workers where the firms are. Neither account explains the whole story. Consider "
    "two mill towns of similar size in 1950, each dependent on a single industry. One lost its factories and half "
    "its people within thirty years; the other, no better placed, became a centre of medical research. The "
    "difference lay less in what they had than in what their institutions did with it \u2014 a university that "
    "opened its laboratories to local firms, a council that rebuilt the centre instead of the ring road, banks "
    "willing to lend to newcomers. Such choices are rarely dramatic, and they rarely make the news."
)

#: Inputs whose activation ranges set the export's smoothing (qa/embed/export.py ``smooth``).
CALIBRATION = [
    "!", "ok", "yes", "B", "2024", "...", "#", "--",
    "How tall is the tower?", "who wrote the report on water quality", "Where was the treaty signed?",
    "When did the second phase of the project start?", "Why did the company close its factory in Ohio?",
    "best price solar panels germany 2023", "symptoms vitamin d deficiency adults", "capital of australia",
    "What is the boiling point of ethanol at sea level?", "list of novels set in Venice",
    "The committee approved the plan by seven votes to two.",
    "Prices rose by 4.7% in the year to March, the fastest rate since 1991.",
    "She moved to Lisbon in 1998 and taught mathematics there for twenty years.",
    "Der Vertrag wurde 1990 in Moskau unterzeichnet.", "La réunion est reportée à jeudi prochain.",
    "El informe anual se publicará en junio.", "Это письмо пришло слишком поздно.", "北京是中国的首都。",
    "ソフトウェアの更新は明日行われます。", "서울은 한국의 수도입니다.", "الاجتماع يوم الأحد القادم",
    "Temperature: 21.5 °C; humidity: 64 %; wind: NW 12 km/h", "ERROR 503: service unavailable (retry in 30 s)",
    "https://example.org/reports/2023/annual-review.pdf", "x = (b ± √(b² − 4ac)) / 2a",
    "🙂 Thanks so much!!! See you at 7 🎉", "ALL STAFF MUST ATTEND THE SAFETY BRIEFING ON MONDAY",
    "Item 3.1.4 (a)(ii), as amended by regulation 2019/881", "Tel. +44 20 7946 0958, fax +44 20 7946 0959",
    _RIVER, _BUDGET, _MEETING, _CODE, _LETTER, _NEWS, _ESSAY, _RIVER + " " + _BUDGET,
    _MEETING + " " + _LETTER + " " + _RIVER, _NEWS + "\n\n" + _ESSAY,
]

#: Held apart from the calibration: the vectors an export must keep close to fp32 on the CPU it runs on.
CHECK = [
    "?", "A", "hello", "Who signed the agreement, and when?", "cheap flights lisbon march",
    "The museum reopened after a two-year restoration of its roof.",
    "Naïve café owners in Zürich serve crème brûlée.", "東京は日本の首都です。", "Москва — столица России.",
    "Revenue grew 12% to $3.4 billion in fiscal 2022 (see note 5).", "for i in range(10): print(i * i)",
    "PLEASE REPLY BEFORE FRIDAY", "Emoji test 🙂🚀 with symbols ∑ ∫ √ and → arrows.",
    " ".join(f"Passage word {i} tells of rivers, mountains, treaties and harvests in year {1800 + i}."
             for i in range(25)),
]

#: Least cosine to the fp32 model an int8 vector of ``CHECK`` may have on the CPU that makes it.
FIDELITY = 0.99
