"""Capitals and seats of government that news writing puts for their country ("Beijing said", "the White House").

A question may ask what "Beijing" did of documents that say "China", or ask after
"the leaders in Berlin and Paris" of an article on "French and German leaders".
The name stands in no document, yet the documents speak of what it means. The
out-of-corpus flag (qa/search/confidence.py) takes such a name as known when a
document holds its country's name or adjective. Only capitals and seats of
government: a city that is not a capital (Istanbul) is asked after as a place.
"""

from __future__ import annotations

import re

# Country | its adjectives and other names | its capitals (spellings in use) and seats of government.
_TABLE = """
Afghanistan|Afghan|Kabul
Albania|Albanian|Tirana
Algeria|Algerian|Algiers
Andorra|Andorran|Andorra la Vella
Angola|Angolan|Luanda
Argentina|Argentine,Argentinian|Buenos Aires,Casa Rosada
Armenia|Armenian|Yerevan
Australia|Australian|Canberra
Austria|Austrian|Vienna
Azerbaijan|Azerbaijani|Baku
Bahamas|Bahamian|Nassau
Bahrain|Bahraini|Manama
Bangladesh|Bangladeshi|Dhaka
Barbados|Barbadian|Bridgetown
Belarus|Belarusian,Belorussian|Minsk
Belgium|Belgian|Brussels
Belize|Belizean|Belmopan
Benin|Beninese|Porto-Novo
Bhutan|Bhutanese|Thimphu
Bolivia|Bolivian|Sucre,La Paz
Bosnia|Bosnian|Sarajevo
Botswana|Botswanan|Gaborone
Brazil|Brazilian|Brasilia,Brasília
Brunei|Bruneian|Bandar Seri Begawan
Bulgaria|Bulgarian|Sofia
Burkina Faso|Burkinabe|Ouagadougou
Burundi|Burundian|Gitega
Cambodia|Cambodian|Phnom Penh
Cameroon|Cameroonian|Yaounde,Yaoundé
Canada|Canadian|Ottawa
Cape Verde|Cape Verdean|Praia
Central African Republic|Central African|Bangui
Chad|Chadian|N'Djamena
Chile|Chilean|Santiago
China|Chinese|Beijing,Peking,Zhongnanhai
Colombia|Colombian|Bogota,Bogotá
Comoros|Comorian|Moroni
Congo|Congolese|Kinshasa,Brazzaville
Costa Rica|Costa Rican|San Jose,San José
Croatia|Croatian|Zagreb
Cuba|Cuban|Havana
Cyprus|Cypriot|Nicosia
Czech Republic|Czech,Czechia|Prague
Denmark|Danish|Copenhagen
Djibouti|Djiboutian|Djibouti
Dominican Republic|Dominican|Santo Domingo
Ecuador|Ecuadorian|Quito
Egypt|Egyptian|Cairo
El Salvador|Salvadoran|San Salvador
Equatorial Guinea|Equatorial Guinean|Malabo
Eritrea|Eritrean|Asmara
Estonia|Estonian|Tallinn
Eswatini|Swazi,Swaziland|Mbabane
Ethiopia|Ethiopian|Addis Ababa
Fiji|Fijian|Suva
Finland|Finnish|Helsinki
France|French|Paris,Elysee,Élysée
Gabon|Gabonese|Libreville
Gambia|Gambian|Banjul
Georgia|Georgian|Tbilisi
Germany|German|Berlin,Bonn
Ghana|Ghanaian|Accra
Greece|Greek|Athens
Guatemala|Guatemalan|Guatemala City
Guinea|Guinean|Conakry
Guyana|Guyanese|Georgetown
Haiti|Haitian|Port-au-Prince
Honduras|Honduran|Tegucigalpa
Hungary|Hungarian|Budapest
Iceland|Icelandic|Reykjavik,Reykjavík
India|Indian|New Delhi,Delhi
Indonesia|Indonesian|Jakarta
Iran|Iranian,Persian|Tehran,Teheran
Iraq|Iraqi|Baghdad
Ireland|Irish|Dublin
Israel|Israeli|Jerusalem,Tel Aviv
Italy|Italian|Rome
Ivory Coast|Ivorian|Yamoussoukro,Abidjan
Jamaica|Jamaican|Kingston
Japan|Japanese|Tokyo
Jordan|Jordanian|Amman
Kazakhstan|Kazakh|Astana,Almaty
Kenya|Kenyan|Nairobi
Kosovo|Kosovar|Pristina
Kuwait|Kuwaiti|Kuwait City
Kyrgyzstan|Kyrgyz|Bishkek
Laos|Lao,Laotian|Vientiane
Latvia|Latvian|Riga
Lebanon|Lebanese|Beirut
Lesotho|Basotho|Maseru
Liberia|Liberian|Monrovia
Libya|Libyan|Tripoli
Liechtenstein|Liechtensteiner|Vaduz
Lithuania|Lithuanian|Vilnius
Luxembourg|Luxembourgish|Luxembourg
Madagascar|Malagasy|Antananarivo
Malawi|Malawian|Lilongwe
Malaysia|Malaysian|Kuala Lumpur,Putrajaya
Mali|Malian|Bamako
Malta|Maltese|Valletta
Mauritania|Mauritanian|Nouakchott
Mauritius|Mauritian|Port Louis
Mexico|Mexican|Mexico City
Moldova|Moldovan|Chisinau,Chișinău
Monaco|Monegasque|Monaco
Mongolia|Mongolian|Ulaanbaatar,Ulan Bator
Montenegro|Montenegrin|Podgorica
Morocco|Moroccan|Rabat
Mozambique|Mozambican|Maputo
Myanmar|Burmese,Burma|Naypyidaw,Yangon,Rangoon
Namibia|Namibian|Windhoek
Nepal|Nepali,Nepalese|Kathmandu
Netherlands|Dutch,Holland|Amsterdam,The Hague
New Zealand|New Zealander|Wellington
Nicaragua|Nicaraguan|Managua
Niger|Nigerien|Niamey
Nigeria|Nigerian|Abuja
North Korea|North Korean|Pyongyang
North Macedonia|Macedonian|Skopje
Norway|Norwegian|Oslo
Oman|Omani|Muscat
Pakistan|Pakistani|Islamabad
Palestine|Palestinian|Ramallah
Panama|Panamanian|Panama City
Papua New Guinea|Papua New Guinean|Port Moresby
Paraguay|Paraguayan|Asuncion,Asunción
Peru|Peruvian|Lima
Philippines|Philippine,Filipino|Manila
Poland|Polish|Warsaw
Portugal|Portuguese|Lisbon
Qatar|Qatari|Doha
Romania|Romanian|Bucharest
Russia|Russian|Moscow,Kremlin
Rwanda|Rwandan|Kigali
Saudi Arabia|Saudi|Riyadh
Senegal|Senegalese|Dakar
Serbia|Serbian|Belgrade
Sierra Leone|Sierra Leonean|Freetown
Singapore|Singaporean|Singapore
Slovakia|Slovak|Bratislava
Slovenia|Slovenian,Slovene|Ljubljana
Somalia|Somali|Mogadishu
South Africa|South African|Pretoria,Cape Town
South Korea|South Korean|Seoul
South Sudan|South Sudanese|Juba
Spain|Spanish|Madrid
Sri Lanka|Sri Lankan|Colombo
Sudan|Sudanese|Khartoum
Suriname|Surinamese|Paramaribo
Sweden|Swedish|Stockholm
Switzerland|Swiss|Bern,Berne
Syria|Syrian|Damascus
Taiwan|Taiwanese|Taipei
Tajikistan|Tajik|Dushanbe
Tanzania|Tanzanian|Dodoma,Dar es Salaam
Thailand|Thai|Bangkok
Togo|Togolese|Lome,Lomé
Trinidad and Tobago|Trinidadian|Port of Spain
Tunisia|Tunisian|Tunis
Turkey|Turkish,Turkiye,Türkiye|Ankara
Turkmenistan|Turkmen|Ashgabat
Uganda|Ugandan|Kampala
Ukraine|Ukrainian|Kyiv,Kiev
United Arab Emirates|Emirati,UAE|Abu Dhabi
United Kingdom|British,Britain,UK|London,Downing Street,Whitehall,Westminster
United States|American,America,USA|Washington,White House,Capitol Hill,Pentagon
Uruguay|Uruguayan|Montevideo
Uzbekistan|Uzbek|Tashkent
Venezuela|Venezuelan|Caracas
Vietnam|Vietnamese|Hanoi
Yemen|Yemeni|Sanaa,Sana'a
Zambia|Zambian|Lusaka
Zimbabwe|Zimbabwean|Harare
"""


def _read(table: str) -> dict[str, tuple[str, ...]]:
    places: dict[str, tuple[str, ...]] = {}
    for line in table.strip().splitlines():
        country, others, listed = line.split("|")
        seats = listed.split(",")
        meaning = (country, *others.split(","), *seats)  # "the White House" of texts saying "Washington"
        for seat in seats:
            if seat != country:  # a city-state's capital is its own name
                places[seat] = meaning
    return places


#: A capital or seat of government, as written, and what it stands for: its country's names, adjectives and seats.
PLACES = _read(_TABLE)
_PLACE = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, PLACES), key=len, reverse=True)) + r")\b")


def places_in(question: str) -> dict[str, tuple[str, ...]]:
    """Return the capitals and seats of government the question names, each with what it stands for."""
    return {m.group(): PLACES[m.group()] for m in _PLACE.finditer(question)}
